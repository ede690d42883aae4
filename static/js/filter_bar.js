// The filter bar's form sends only the fields that hold a value, so a shared
// link reads "?range=7d&os=linux" rather than listing every empty field.
// Without this script the form still works; the link is just longer.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form.filter-form");
  for (var i = 0; i < forms.length; i++) {
    forms[i].addEventListener("formdata", function (event) {
      var empty = [];
      event.formData.forEach(function (value, name) {
        if (value === "") empty.push(name);
      });
      empty.forEach(function (name) { event.formData.delete(name); });
    });
  }
})();
