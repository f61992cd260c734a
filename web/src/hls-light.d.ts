// hls.js ships its light build (no subtitles, DRM or alternate audio:
// nothing an audio player needs) without a type file of its own.
declare module 'hls.js/light' {
  export * from 'hls.js';
  export { default } from 'hls.js';
}
