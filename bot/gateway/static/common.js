// What the chat and the dashboard share: who is logged in, and logging out.
"use strict";

const podbot = {
  async session() {
    const answer = await fetch("/session", { credentials: "same-origin" });
    if (!answer.ok) {
      location.replace("/login");
      throw new Error("not logged in");
    }
    const session = await answer.json();
    document.getElementById("who").textContent = session.identity;
    document.getElementById("logout").addEventListener("click", async () => {
      await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": session.csrf } });
      location.replace("/login");
    });
    return session;
  },

  // Text from the bot is shown as text, never as markup.
  element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  },
};
