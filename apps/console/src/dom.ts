type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | number | boolean | undefined>;

/** An element with attributes (false/undefined ones left out) and children (falsy ones left out). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

/** A page's heading, focused when the page opens so that screen readers announce it. */
export function heading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: -1 }, text);
}

/** A short, readable form of an ISO time, in the browser's locale. */
export function shortTime(iso: string | null): string {
  return iso === null ? '—' : new Date(iso).toLocaleString();
}
