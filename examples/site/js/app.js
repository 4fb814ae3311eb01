import { greet } from "./lib/greet.js";

const el = document.querySelector("[data-greeting]");
if (el) {
  el.textContent = greet(el.dataset.greeting);
}

const time = document.querySelector("[data-time]");
if (time) {
  import("./lazy.js").then((m) => m.default(time));
}
