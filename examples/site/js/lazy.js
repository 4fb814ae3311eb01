// Loaded on demand by app.js with a dynamic import().
export default function showTime(el) {
  el.textContent = `Page rendered at ${new Date().toISOString()}`;
}
