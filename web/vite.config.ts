// Builds the web console into dist/, which the server embeds and serves at `/`.
// No source maps: the server ships exactly index.html, sw.js and the hashed files under assets/.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    // Everything is loaded from files (the CSP has no 'unsafe-inline'): never inline assets.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
