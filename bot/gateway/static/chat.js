// The web chat: one WebSocket (docs/gateway-protocol.md), authenticated by the session's CSRF token.
"use strict";

const transcript = document.getElementById("transcript");
const statusLine = document.getElementById("status");
const input = document.getElementById("message");
let socket = null;
let sent = 0;
let retry = 1000;

function send(text) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  sent += 1;
  show("me", text).id = "sent-" + sent;
  socket.send(JSON.stringify({ type: "message", id: String(sent), text }));
  return true;
}

function show(who, text, code, actions) {
  const item = podbot.element("li", undefined, who);
  item.append(podbot.element("p", text));
  if (code) item.append(podbot.element("pre", code));
  if (actions && actions.length) {
    // A button says its command, as if typed: the bot decides what it may do, as for anything typed.
    const row = podbot.element("div", undefined, "actions");
    for (const action of actions) {
      const button = podbot.element("button", action.label);
      button.type = "button";
      button.addEventListener("click", () => {
        if (send(action.command)) row.querySelectorAll("button").forEach((b) => (b.disabled = true));
      });
      row.append(button);
    }
    item.append(row);
  }
  transcript.append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function connect(session) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/ws");
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", csrf: session.csrf, v: 1 })));
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "welcome") {
      statusLine.textContent = "";
      retry = 1000;
    } else if (frame.type === "reply") {
      show("bot", frame.text, frame.code, frame.actions);
    } else if (frame.type === "ack") {
      const mine = document.getElementById("sent-" + frame.id);
      if (mine) mine.classList.add("acked");
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) {
      statusLine.textContent = "Your session has ended: ask for a new login link.";
      return;
    }
    statusLine.textContent = "Reconnecting…";
    setTimeout(() => connect(session), retry);
    retry = Math.min(retry * 2, 30000);
  });
}

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text && send(text)) input.value = "";
});

podbot.session().then(connect);
