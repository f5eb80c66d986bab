/*
 * banner.js - the dismissable banner above the cards: errors that belong to no single form.
 */
import { byId } from './dom.js';

export function showBanner(message, kind) {
  byId('banner-text').textContent = message;
  byId('banner').className = 'banner ' + (kind || 'error');
  byId('banner').hidden = false;
}

export function hideBanner() {
  byId('banner').hidden = true;
}

export function reportError(prefix, e) {
  showBanner(prefix + ': ' + (e && e.message ? e.message : String(e)), 'error');
}

export function initBanner() {
  byId('banner-close').addEventListener('click', hideBanner);
}
