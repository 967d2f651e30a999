// Product analytics page: turns the comma-separated "Funnel steps" field into a list of
// step inputs with add / remove buttons. The text field stays the one the form submits,
// so the page works the same without JavaScript.
(function () {
  "use strict";
  const MIN_STEPS = 2;
  const MAX_STEPS = 10;

  function init() {
    const field = document.getElementById("id_steps");
    if (!field) return;
    const list = document.createElement("div");
    list.className = "step-list";
    list.setAttribute("role", "group");
    list.setAttribute("aria-label", "Funnel steps, in order");

    function values() {
      return Array.from(list.querySelectorAll("input")).map((input) => input.value.trim());
    }
    function sync() {
      field.value = values().join(",");
    }
    function button(text, label, onClick) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.setAttribute("aria-label", label);
      b.addEventListener("click", onClick);
      return b;
    }
    function render(steps) {
      list.replaceChildren();
      steps.forEach((step, i) => {
        const item = document.createElement("span");
        item.className = "step-item";
        const number = document.createElement("span");
        number.className = "step-number";
        number.textContent = i + 1 + ".";
        const input = document.createElement("input");
        input.type = "text";
        input.value = step;
        input.className = "step-input";
        input.setAttribute("aria-label", "Step " + (i + 1));
        input.addEventListener("input", sync);
        item.append(number, input);
        if (steps.length > MIN_STEPS) {
          item.append(
            button("×", "Remove step " + (i + 1), () => {
              const next = values();
              next.splice(i, 1);
              render(next);
            })
          );
        }
        list.append(item);
      });
      if (steps.length < MAX_STEPS) {
        list.append(button("+ step", "Add a step", () => render(values().concat([""]))));
      }
      sync();
    }

    const steps = field.value.split(",").map((s) => s.trim());
    while (steps.length < MIN_STEPS) steps.push("");
    field.type = "hidden";
    field.after(list);
    render(steps.slice(0, MAX_STEPS));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
