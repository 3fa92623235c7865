#!/usr/bin/env node
// Renders the dashboard's app icons (public/assets/icons/*.png) from one SVG
// drawing, in headless Chromium: no image library needed. Run once after
// changing the drawing and commit the PNGs; the build only copies them.
//   npm run icons
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchBrowser } from './harness.mjs';

const ICONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'public', 'assets', 'icons');
const BLUE = '#1f6feb';

/** The brand mark (the header's ◆) as a white diamond with a blue core. */
function mark(scale) {
  const at = (v) => 256 + (v - 256) * scale;
  const diamond = (r) => `M${at(256)} ${at(256 - r)} ${at(256 + r)} ${at(256)} ${at(256)} ${at(256 + r)} ${at(256 - r)} ${at(256)}Z`;
  return `<path d="${diamond(160)}" fill="#fff"/><path d="${diamond(70)}" fill="${BLUE}"/>`;
}

// `any` icons are a rounded tile; maskable and Apple icons fill the square
// (the platform cuts its own shape) and keep the mark inside the 80 % safe zone.
const tile = `<rect width="512" height="512" rx="112" fill="${BLUE}"/>${mark(1)}`;
const fullBleed = `<rect width="512" height="512" fill="${BLUE}"/>${mark(0.78)}`;

const OUTPUTS = [
  { file: 'icon-192.png', size: 192, body: tile },
  { file: 'icon-512.png', size: 512, body: tile },
  { file: 'icon-maskable-512.png', size: 512, body: fullBleed },
  { file: 'apple-touch-icon.png', size: 180, body: fullBleed },
];

const svg = (body) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">${body}</svg>`;

const browser = await launchBrowser();
try {
  await writeFile(path.join(ICONS, 'icon.svg'), `${svg(tile)}\n`);
  for (const { file, size, body } of OUTPUTS) {
    const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
    await page.setContent(
      `<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${svg(body)}`,
    );
    await writeFile(path.join(ICONS, file), await page.screenshot({ omitBackground: true }));
    await page.close();
    console.log(`icons: wrote ${file} (${size}x${size})`);
  }
} finally {
  await browser.close();
}
