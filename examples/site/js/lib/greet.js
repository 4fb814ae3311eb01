// A small module imported by app.js.
export function greet(name) {
  return `Hello, ${name}!`;
}
