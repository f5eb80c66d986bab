/*
 * dom.js - the only way the dashboard makes elements.
 *
 * Titles, categories and error messages come from store pages and are untrusted, so nodes are
 * built with createElement / textContent / setAttribute only: nothing is ever parsed as HTML.
 * The CSP forbids inline style and script, so no attribute here can carry either.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

export const byId = (id) => document.getElementById(id);

/*
 * An HTML element. attrs: "class", "text" (textContent), "onX" (an event listener) or an
 * attribute (true: present and empty; null, undefined or false: left out). children: nodes,
 * strings (as text), arrays of them; null, undefined and false are skipped.
 */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/* The same for SVG (sparklines and the history chart). */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function build(node, attrs, children) {
  if (attrs) setAttrs(node, attrs);
  for (const c of children) append(node, c);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(node, c);
    return;
  }
  node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}
