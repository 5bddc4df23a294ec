// Select-all and a live selection count for the book list. The page works without it.
(function () {
  function update() {
    var boxes = document.querySelectorAll("#book-table input[name=selected]");
    var checked = document.querySelectorAll("#book-table input[name=selected]:checked").length;
    var label = document.getElementById("selection-count");
    if (label) {
      label.textContent = checked ? checked + " selected:" : "Select books, then:";
    }
    var all = document.querySelector("#book-table [data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("#book-table [data-select-all]")) {
      document.querySelectorAll("#book-table input[name=selected]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    update();
  });
  document.addEventListener("htmx:afterSwap", update);
  document.addEventListener("DOMContentLoaded", update);
})();
