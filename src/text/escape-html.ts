/** Escapes text for HTML element content and quoted attribute values (the five significant characters). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
