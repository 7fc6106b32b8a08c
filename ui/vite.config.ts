import { defineConfig } from "vite";

const page = (name: string) => new URL(name, import.meta.url).pathname;

export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: { settings: page("index.html"), alarm: page("alarm.html") },
    },
  },
});
