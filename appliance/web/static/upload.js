// Uploads in chunks with a progress bar, then follows the file to its committed batch (no inline script).
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form) { return; }
  var list = document.getElementById("upload-progress");
  var csrf = form.getAttribute("data-csrf");
  var words = list.dataset;

  function post(url, body, type) {
    return fetch(url, { method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRFToken": csrf, "Content-Type": type } }).then(function (r) {
      return r.json().then(function (data) { if (!r.ok) { throw new Error(data.error || r.status); } return data; });
    });
  }

  function line(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.textContent = file.name + " ";
    var bar = document.createElement("progress");
    bar.max = file.size; bar.value = 0;
    var state = document.createElement("span");
    state.className = "upload-state";
    item.appendChild(name); item.appendChild(bar); item.appendChild(state);
    list.appendChild(item);
    return { bar: bar, state: state };
  }

  function follow(id, view) {
    fetch(form.getAttribute("data-start") + "/" + id, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        view.state.textContent = " " + (words[s.state] || s.state);
        view.state.setAttribute("data-state", s.state);
        if (s.state === "committed") {
          var link = document.createElement("a");
          link.href = form.getAttribute("data-batch-url").replace(/0$/, s.batch);
          link.className = "batch-link";
          link.textContent = " " + words.batch + " " + s.batch + ": " + s.loaded + " " + words.loaded + ", " +
            s.quarantined + " " + words.quarantined;
          view.state.appendChild(link);
        } else if (s.state === "failed") {
          view.state.textContent += ": " + s.error;
        } else {
          window.setTimeout(function () { follow(id, view); }, 1000);
        }
      });
  }

  function send(file, source) {
    var view = line(file);
    view.state.textContent = " " + words.receiving;
    return post(form.getAttribute("data-start"), JSON.stringify({ source: source, name: file.name, size: file.size }),
      "application/json").then(function (started) {
      var base = form.getAttribute("data-start") + "/" + started.id;
      var next = function (offset) {
        if (offset >= file.size) { return post(base + "/finish", "", "application/json"); }
        return post(base + "/chunk?offset=" + offset, file.slice(offset, offset + started.chunk),
          "application/octet-stream").then(function (got) { view.bar.value = got.received; return next(got.received); });
      };
      return next(0).then(function () { follow(started.id, view); });
    }).catch(function (error) {
      view.state.textContent = " " + words.failed + ": " + error.message;
      view.state.setAttribute("data-state", "failed");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var source = form.querySelector("select[name=source]").value;
    var files = Array.prototype.slice.call(form.querySelector("input[type=file]").files);
    files.reduce(function (chain, file) { return chain.then(function () { return send(file, source); }); },
      Promise.resolve());
  });
})();
