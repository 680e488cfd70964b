// The dashboard: GET /api/v1/dashboard every second, drawn with textContent only; approvals POST like any API client.
"use strict";

let session = null;

const REFRESH = 1000;
const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleTimeString() : "");
const request = (job) => [job.skill, ...Object.entries(job.args).map(([k, v]) => k + "=" + v)].join(" ");

function fill(id, items, draw) {
  const list = document.getElementById(id);
  list.replaceChildren(...items.map(draw));
  if (!items.length) list.append(podbot.element("li", "none", "none"));
}

function jobRow(job) {
  const row = document.createElement("tr");
  row.id = "job-" + job.id;
  row.append(
    podbot.element("td", String(job.id)),
    podbot.element("td", request(job)),
    podbot.element("td", job.state, "state " + job.state),
    podbot.element("td", job.requester + " " + when(job.created)),
  );
  const output = document.createElement("td");
  if (job.output) output.append(podbot.element("pre", job.output));
  row.append(output);
  return row;
}

// Approve or Deny: the REST API decides as /approve and /deny do in chat; its one-line refusal is shown as it is.
async function decide(job, verdict) {
  const status = document.getElementById("status");
  const answer = await fetch(`/api/v1/jobs/${job.id}/${verdict}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": session.csrf },
  });
  status.textContent = answer.ok ? "" : (await answer.json()).error;
}

function approvalRow(job) {
  const item = podbot.element("li", undefined, "decide");
  item.id = "approval-" + job.id;
  const deadline = new Date(job.deadline * 1000).toLocaleTimeString();
  item.append(podbot.element("span", `job ${job.id}: ${job.request} — asked by ${job.requester}, until ${deadline}`));
  for (const [label, verdict] of [["Approve", "approve"], ["Deny", "deny"]]) {
    const button = podbot.element("button", label, verdict);
    button.type = "button";
    button.addEventListener("click", () => {
      button.disabled = true;
      decide(job, verdict);
    });
    item.append(button);
  }
  return item;
}

function draw(board) {
  document.getElementById("approvals-section").hidden = !board.approvals.length;
  const waiting = document.getElementById("approvals");
  const shown = [...waiting.children].map((item) => item.id).join();
  // Redrawn only when the list changes, so a button is not replaced under the pointer.
  if (shown !== board.approvals.map((job) => "approval-" + job.id).join()) waiting.replaceChildren(...board.approvals.map(approvalRow));
  document.getElementById("jobs").replaceChildren(...board.jobs.map(jobRow));
  fill("skills", board.skills, (s) => {
    const item = podbot.element("li");
    item.append(podbot.element("code", s.usage), podbot.element("span", " " + s.description));
    return item;
  });
  document.querySelectorAll(".admin").forEach((section) => (section.hidden = !board.admin));
  if (!board.admin) return;
  fill("schedules", board.schedules, (s) =>
    podbot.element("li", `${s.name}: ${s.skill} at ${s.cron}${s.timezone ? " " + s.timezone : ""}, ${s.paused ? "paused" : "next " + when(s.next_run)}`),
  );
  fill("outbox", board.outbox, (o) => podbot.element("li", `${o.platform}: ${o.pending} owed, oldest ${o.oldest_seconds} s`));
  fill("audit", board.audit, (e) =>
    podbot.element("li", [when(e.ts), e.actor, e.event, e.skill, e.job_id ? "job " + e.job_id : "", e.detail].filter(Boolean).join(" ")),
  );
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const answer = await fetch("/api/v1/dashboard", { credentials: "same-origin" });
    if (answer.status === 401) {
      location.replace("/login");
      return;
    }
    draw(await answer.json());
    status.textContent = "";
  } catch (error) {
    status.textContent = "Cannot reach podbot; retrying…";
  }
  setTimeout(refresh, REFRESH);
}

podbot.session().then((mine) => {
  session = mine;
  refresh();
});
