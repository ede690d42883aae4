// The alert rule form: show only the fields the chosen kind uses (alerts.forms.RuleForm).
// Without JavaScript every field shows, and the server says which ones a kind needs.
(function () {
  "use strict";
  var uses = {
    silence: ["minutes"],
    volume: ["factor", "direction", "min_count"],
    failure_rate: ["threshold", "minutes", "min_count", "command"],
    new_version: ["minutes"],
    regression: [],
    quota: ["threshold"]
  };
  var optional = ["minutes", "factor", "direction", "threshold", "min_count", "command"];
  var kind = document.getElementById("id_kind");
  if (!kind) return;
  function update() {
    var wanted = uses[kind.value] || optional;
    optional.forEach(function (name) {
      var input = document.getElementById("id_" + name);
      if (input && input.parentElement) input.parentElement.hidden = wanted.indexOf(name) === -1;
    });
  }
  kind.addEventListener("change", update);
  update();
})();
