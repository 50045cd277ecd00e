// Shows each <time> in the viewer's own zone; the title keeps UTC.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime()) && d.getUTCFullYear() > 1) {
      el.textContent = d.toLocaleString();
    }
  });
});
