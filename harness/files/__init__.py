"""An action's temp dir: ``files:`` written in (plain, base64, tar, tar.gz), ``out/`` collected."""
