// Tenantry console: progressive enhancement only. Every page works without
// this script; with it, relative times stay current and destructive forms
// ask once more before they are sent.
"use strict";

(function () {
  function relative(at, now) {
    var secs = Math.round((at - now) / 1000);
    var abs = Math.abs(secs);
    var amount;
    if (abs < 45) return "just now";
    if (abs < 5400) amount = Math.round(abs / 60) + " min";
    else if (abs < 129600) amount = Math.round(abs / 3600) + " h";
    else {
      var days = Math.round(abs / 86400);
      amount = days === 1 ? "1 day" : days + " days";
    }
    return secs < 0 ? amount + " ago" : "in " + amount;
  }

  function refreshTimes() {
    var now = Date.now();
    document.querySelectorAll("time[datetime] .rel").forEach(function (el) {
      var at = Date.parse(el.parentElement.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = "(" + relative(at, now) + ")";
    });
  }

  // <form data-confirm="message">: a native confirmation before sending.
  function guardForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes();
    guardForms();
    window.setInterval(refreshTimes, 30000);
  });
})();
