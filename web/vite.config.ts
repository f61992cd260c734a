// Vite builds the player into web/dist: index.html and hashed assets.
// JSX is compiled by Vite's own transformer (no React plugin: no fast
// refresh in `npm run dev`, one dependency less). hls.js is loaded on
// demand, in its own chunk, when the adaptive mode first plays.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 450,
    rollupOptions: {
      // the player, and the share page of a private link (/s/{id})
      input: { index: 'index.html', share: 'share.html' },
      output: {
        // React in a chunk of its own: the player's own code stays a small
        // file that changes alone from one release to the next.
        manualChunks(id: string) {
          if (/node_modules\/(react|react-dom|scheduler)\//.test(id)) return 'react';
          return undefined;
        },
      },
    },
  },
  server: {
    // `npm run dev` talks to a talas-master on the quickstart's port
    proxy: {
      '/api/ws': { target: 'ws://127.0.0.1:8082', ws: true },
      '/api': 'http://127.0.0.1:8082',
      '/stream': 'http://127.0.0.1:8082',
      '/preview': 'http://127.0.0.1:8082',
      '/hls': 'http://127.0.0.1:8082',
      '/s/': 'http://127.0.0.1:8082',
    },
  },
});
