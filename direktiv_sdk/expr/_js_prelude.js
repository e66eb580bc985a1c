// Installed once in the shared V8 context: goja's globals, the instance clock, and the runner.
(function () {
  "use strict";
  const g = globalThis;
  // goja.New() has none of these; a script using them fails on Direktiv, so it fails here too.
  for (const name of ["console", "setTimeout", "clearTimeout", "WebAssembly", "__timer_manager"]) {
    const slot = Object.getOwnPropertyDescriptor(g, name);
    if (slot === undefined) continue;
    if (slot.configurable) delete g[name];
    else if (slot.writable) g[name] = undefined; // a `var` of mini-racer's: hide it
  }
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const utf8 = (text) => {
    const bytes = [];
    for (const ch of String(text)) {
      let c = ch.codePointAt(0);
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate: Go sees U+FFFD
      if (c < 0x80) bytes.push(c);
      else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return bytes;
  };
  const fromUtf8 = (bytes) => {
    // Go's string(bytes) as goja reads it: every invalid sequence becomes U+FFFD.
    let out = "";
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i];
      const need = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1;
      if (need === 0) { out += String.fromCharCode(b); i += 1; continue; }
      let c = need === 1 ? b & 31 : need === 2 ? b & 15 : b & 7;
      let ok = need > 0 && i + need < bytes.length + 1;
      for (let k = 1; ok && k <= need; k++) {
        const n = bytes[i + k];
        if (n === undefined || (n & 0xc0) !== 0x80) ok = false;
        else c = (c << 6) | (n & 63);
      }
      if (ok && ((need === 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (need === 3 && (c < 0x10000 || c > 0x10ffff)))) ok = false;
      if (!ok) { out += "\ufffd"; i += 1; continue; }
      out += String.fromCodePoint(c);
      i += need + 1;
    }
    return out;
  };
  const btoa = function btoa(text) {
    const bytes = utf8(text);
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
      out += i + 2 < bytes.length ? B64[n & 63] : "=";
    }
    return out;
  };
  const atob = function atob(text) {
    // Go's base64.StdEncoding.DecodeString: padding required, CR and LF skipped; on error
    // Direktiv's atob returns the error text instead of throwing.
    const chars = [];
    const at = [];
    const src = String(text);
    for (let i = 0; i < src.length; i++) {
      if (src[i] !== "\r" && src[i] !== "\n") { chars.push(src[i]); at.push(i); }
    }
    const bytes = [];
    for (let i = 0; i < chars.length; i += 4) {
      const quad = chars.slice(i, i + 4);
      let n = 0;
      let pad = 0;
      for (let k = 0; k < 4; k++) {
        const ch = quad[k];
        if (ch === undefined) return "illegal base64 data at input byte " + at[i];
        if (ch === "=" && k >= 2) {
          pad = 4 - k;
          for (let r = k + 1; r < 4; r++) {
            if (quad[r] !== "=") return "illegal base64 data at input byte " + (at[i + r] !== undefined ? at[i + r] : src.length);
          }
          if (i + 4 < chars.length) return "illegal base64 data at input byte " + at[i + 4];
          break;
        }
        const v = B64.indexOf(ch);
        if (v < 0) return "illegal base64 data at input byte " + at[i + k];
        n |= v << (18 - 6 * k);
      }
      bytes.push((n >> 16) & 255);
      if (pad < 2) bytes.push((n >> 8) & 255);
      if (pad < 1) bytes.push(n & 255);
    }
    return fromUtf8(bytes);
  };
  Object.defineProperty(g, "btoa", { value: btoa, writable: true, configurable: true });
  Object.defineProperty(g, "atob", { value: atob, writable: true, configurable: true });

  // Date reads the instance clock: `new Date()`, `Date()` and `Date.now()`.
  const RealDate = Date;
  let clockMs = null;
  const now = () => (clockMs === null ? RealDate.now() : clockMs);
  function DxDate(...args) {
    if (!new.target) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length ? args : [now()], new.target);
  }
  DxDate.prototype = RealDate.prototype;
  Object.defineProperty(RealDate.prototype, "constructor", { value: DxDate, writable: true, configurable: true });
  Object.defineProperty(DxDate, "now", { value: function now_() { return now(); }, writable: true, configurable: true });
  DxDate.parse = RealDate.parse;
  DxDate.UTC = RealDate.UTC;
  Object.defineProperty(g, "Date", { value: DxDate, writable: true, configurable: true });

  // Every script runs in this one context; goja gives each a fresh VM, so the globals a script
  // adds (sloppy `x = 1`) are removed after it.
  const fns = new Map();
  const keep = new Set(Object.getOwnPropertyNames(g));
  keep.add("__dx");
  const clean = () => {
    for (const k of Object.getOwnPropertyNames(g)) if (!keep.has(k)) delete g[k];
  };
  const where = (e) => {
    const m = /\(<anonymous>:(\d+):(\d+)\)/.exec(String(e && e.stack));
    return m ? " at fn (<eval>:" + m[1] + ":" + m[2] + ")" : "";
  };
  const describe = (e) => {
    if (e instanceof Error) return String(e.name) + ": " + String(e.message) + where(e);
    try { return String(e); } catch (_) { return Object.prototype.toString.call(e); }
  };
  Object.defineProperty(g, "__dx", {
    value: Object.freeze({
      define(id, f) { fns.set(id, f); clean(); },
      reset() { clockMs = null; clean(); },
      run(id, text, ms) {
        clockMs = ms;
        try {
          const r = fns.get(id)(JSON.parse(text));
          if (r === undefined || r === null) return "N";
          if (typeof r === "number" && !isFinite(r)) return "Ejson: unsupported value: " + String(r);
          if (typeof r === "function") return "Ejson: unsupported type: func(goja.FunctionCall) goja.Value";
          if (typeof r === "symbol") return "N";
          const s = JSON.stringify(r, (k, v) => (typeof v === "bigint" ? Number(v) : v));
          return s === undefined ? "N" : "V" + s;
        } catch (e) {
          return "E" + describe(e);
        } finally {
          clockMs = null;
          clean();
        }
      },
    }),
  });
})();
