/*
 * websocksy demo page: send a line, show the peer's answer.
 * Opens ws(s)://<this host>/ (same origin as the page).  Each line typed is
 * sent as one text message with "\n" appended; each message received is one
 * line of the peer's answer (the server's newline framing cuts them).
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), stateEl = $("state"), input = $("line");
  var ws = null;
  var history = [], histPos = 0;
  var MAX_LOG = 1000;
  var decoder = new TextDecoder("utf-8", { fatal: false });

  var url = (location.protocol === "https:" ? "wss://" : "ws://") +
    (location.host || "localhost:8001") + "/";
  $("url").textContent = url;

  function stamp() {
    var d = new Date();
    return ("0" + d.getHours()).slice(-2) + ":" +
      ("0" + d.getMinutes()).slice(-2) + ":" +
      ("0" + d.getSeconds()).slice(-2);
  }

  function show(kind, text) {
    var li = document.createElement("li");
    var t = document.createElement("span");
    var m = document.createElement("span");
    t.className = "time";
    t.textContent = stamp();
    m.className = kind;
    m.textContent = text;
    li.appendChild(t);
    li.appendChild(m);
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(li);
    while (log.childNodes.length > MAX_LOG) log.removeChild(log.firstChild);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function setState(cls, text) {
    stateEl.className = cls;
    stateEl.textContent = text;
    var open = cls === "open";
    $("send").disabled = !open;
    $("disconnect").disabled = cls === "closed";
  }

  /* One message is one line; drop its line ending for display. */
  function received(data) {
    var text = typeof data === "string" ? data : decoder.decode(data);
    show("recv", "< " + text.replace(/\r?\n$/, ""));
  }

  function connect() {
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      ws.close(1000);
      ws = null;
    }
    setState("connecting", "connecting");
    show("info", "connecting to " + url);
    var sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      setState("closed", "not connected");
      show("error", "cannot open " + url + ": " + e.message);
      return;
    }
    sock.binaryType = "arraybuffer";
    sock.onopen = function () {
      setState("open", "connected");
      show("info", "connected; try help, time or quit");
      input.focus();
    };
    sock.onmessage = function (ev) { received(ev.data); };
    sock.onerror = function () {
      show("error", "WebSocket error (the server may be down, or the " +
        "peer unreachable: 502)");
    };
    sock.onclose = function (ev) {
      if (ws === sock) ws = null;
      setState("closed", "closed");
      show("info", "closed: code " + ev.code +
        (ev.reason ? " (" + ev.reason + ")" : "") +
        (ev.wasClean ? "" : ", not clean"));
    };
    ws = sock;
  }

  function send(line) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      show("error", "not connected; press Reconnect");
      return false;
    }
    ws.send(line + "\n");
    show("sent", "> " + line);
    return true;
  }

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var line = input.value;
    if (send(line)) {
      if (line !== "" && history[history.length - 1] !== line)
        history.push(line);
      histPos = history.length;
      input.value = "";
    }
  });

  /* Up / Down walk through the lines sent before. */
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowUp" && histPos > 0) {
      input.value = history[--histPos];
      ev.preventDefault();
    } else if (ev.key === "ArrowDown" && histPos < history.length) {
      histPos++;
      input.value = histPos < history.length ? history[histPos] : "";
      ev.preventDefault();
    }
  });

  $("reconnect").addEventListener("click", connect);
  $("disconnect").addEventListener("click", function () {
    if (ws) ws.close(1000, "bye");
  });
  $("clear").addEventListener("click", function () {
    while (log.firstChild) log.removeChild(log.firstChild);
  });

  connect();
})();
