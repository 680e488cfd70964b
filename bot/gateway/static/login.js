// The one-time code is in the URL's fragment (never sent to a server); trade it for the session cookie.
"use strict";

async function logIn() {
  const status = document.getElementById("status");
  const code = location.hash.slice(1);
  history.replaceState(null, "", location.pathname); // the code works once: keep it out of history
  if (!code) {
    status.textContent = "Open the link that `podbot web login --user NAME` printed.";
    return;
  }
  const answer = await fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code }),
  });
  if (answer.ok) {
    location.replace("/chat");
  } else {
    status.textContent = "This link was used already or has expired. Ask for a new one: podbot web login --user NAME";
  }
}

logIn();
