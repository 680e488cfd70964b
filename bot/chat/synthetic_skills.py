"""Plausible ops skills, generated, to measure routing on a large catalogue (`eval routing --extra-skills N`).

Each skill is one of about forty kinds of ops task (certificates, queues,
backups, replicas, pods, feature flags …) for one of thirty services, with a
description and three examples drawn from that kind's phrasings. Skills of one
kind differ only in the service, and many kinds sit near each other and near
the shipped skills (a bucket's size, a service's traffic), so they are not
trivially told apart. The generated kinds leave out what the shipped skills do
and what the eval sets' "none" cases ask for (restarts, deploys), so a shipped
request or an off-topic message still has one right answer. The same N always
gives the same skills.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.skill import Skill

SERVICES = (
    "billing", "payments", "search", "checkout", "auth", "inventory", "reporting", "mailer", "gateway", "ledger",
    "catalog", "analytics", "notifications", "orders", "shipping", "pricing", "identity", "media", "chat", "scheduler",
    "exports", "imports", "crm", "wiki", "registry", "metrics", "invoices", "profiles", "recommendations", "warehouse",
)  # fmt: skip


@dataclass(frozen=True)
class _Kind:
    name: str
    description: str  # {s}: the service
    examples: tuple[str, ...]
    parameter: tuple[str, str, str] | None = None  # (name, JSON type, description), required


KINDS = (
    _Kind("cert_expiry", "Show when the TLS certificate of the {s} service expires.",
          ("when does the {s} certificate expire?", "is the {s} TLS cert still valid", "days left on the {s} certificate",
           "check {s} cert expiry")),
    _Kind("queue_depth", "Report how many messages wait in the {s} queue.",
          ("how many messages are queued for {s}?", "is the {s} queue backing up", "{s} queue depth",
           "show the backlog of {s} jobs")),
    _Kind("backup_status", "Show the result of the last backup of the {s} database.",
          ("did the {s} backup succeed last night?", "when was {s} last backed up", "{s} backup status",
           "is there a recent backup of the {s} db")),
    _Kind("replica_lag", "Show the replication lag of the {s} database replicas.",
          ("how far behind are the {s} replicas", "{s} replication lag", "is the {s} replica in sync")),
    _Kind("error_rate", "Show the error rate of the {s} API over the last hour.",
          ("how many 500s is {s} throwing", "{s} error rate", "are there errors in {s} right now",
           "is {s} failing requests")),
    _Kind("pod_status", "List the Kubernetes pods of {s} and their state.",
          ("are the {s} pods running?", "show the {s} pods", "which {s} pods are crash looping")),
    _Kind("scale", "Scale the {s} deployment to a number of replicas.",
          ("scale {s} to 5 replicas", "add more {s} instances", "run 3 copies of {s}"),
          ("replicas", "integer", "how many replicas")),
    _Kind("cache_flush", "Flush the {s} cache.",
          ("clear the {s} cache", "purge cached {s} data", "empty the redis cache of {s}")),
    _Kind("feature_flag", "Turn a feature flag of {s} on or off.",
          ("enable the new_checkout flag in {s}", "switch off beta_ui for {s}", "toggle a {s} feature flag"),
          ("flag", "string", "the flag's name")),
    _Kind("rotate_key", "Rotate the API key the {s} service uses.",
          ("rotate the {s} API key", "issue a new secret for {s}", "the {s} token leaked, replace it")),
    _Kind("oncall", "Tell who is on call for {s} this week.",
          ("who is on call for {s}?", "who do I page about {s}", "{s} on-call schedule")),
    _Kind("changelog", "Show what changed in the latest {s} release.",
          ("what's new in the {s} release", "{s} changelog", "which commits went into {s} today")),
    _Kind("traffic", "Show the requests per second {s} serves.",
          ("how much traffic does {s} get", "{s} requests per second", "how many requests hit {s}")),
    _Kind("latency", "Show the p50 and p99 response latency of {s}.",
          ("how slow is {s} today", "{s} p99 latency", "are {s} responses slow")),
    _Kind("db_connections", "Count the open connections to the {s} database.",
          ("how many connections does the {s} db have", "is {s} running out of database connections")),
    _Kind("slow_queries", "List the slowest queries of the {s} database.",
          ("which {s} queries are slow", "top slow queries on {s}", "why is the {s} database slow")),
    _Kind("cron_runs", "List the scheduled jobs of {s} and their last run.",
          ("which {s} cron jobs failed", "when did the {s} nightly job run", "{s} scheduled tasks")),
    _Kind("build_status", "Show the CI build status of the {s} repository.",
          ("is the {s} build green?", "did {s} CI pass", "why is the {s} pipeline red")),
    _Kind("incidents", "List the open incidents for {s}.",
          ("any open incidents on {s}?", "what's broken in {s} right now", "{s} incident list")),
    _Kind("availability", "Report the availability of {s} this month against its SLA.",
          ("are we meeting the {s} SLA?", "{s} availability this month", "how reliable was {s} in May")),
    _Kind("account_lookup", "Look up a customer account in {s} by email address.",
          ("find the {s} account of ada@example.com", "which {s} customer is bob@acme.io", "look up a user in {s}"),
          ("email", "string", "an email address")),
    _Kind("cloud_cost", "Show the cloud spend of {s} this month.",
          ("how much did {s} cost this month", "{s} cloud bill", "is {s} over budget")),
    _Kind("firewall_rules", "Show the firewall rules that apply to {s}.",
          ("which ports are open on {s}", "{s} firewall rules", "can {s} reach the internet")),
    _Kind("grant_dashboard", "Grant a person read access to the {s} dashboard.",
          ("give bob access to the {s} dashboard", "let carol see the {s} graphs", "share the {s} dashboard"),
          ("person", "string", "who gets access")),
    _Kind("maintenance", "Put {s} into maintenance mode or take it out.",
          ("enable maintenance mode for {s}", "take {s} offline for maintenance", "is {s} in maintenance")),
    _Kind("outdated_deps", "List the outdated dependencies of {s}.",
          ("which {s} packages are outdated", "does {s} use a vulnerable library", "{s} dependency report")),
    _Kind("memory", "Show the memory use of the {s} containers.",
          ("how much RAM is {s} using", "is {s} leaking memory", "{s} memory graph")),
    _Kind("cpu_throttling", "Show how much the {s} containers are CPU-throttled.",
          ("is {s} being throttled", "{s} cpu throttling", "does {s} need more cpu")),
    _Kind("config_diff", "Show what changed in the {s} configuration since yesterday.",
          ("who changed the {s} config", "diff the {s} settings", "what's different in the {s} configuration")),
    _Kind("reindex", "Rebuild the {s} search index.",
          ("reindex {s}", "rebuild the {s} search index", "the {s} search results are stale")),
    _Kind("tickets", "List open support tickets about {s}.",
          ("how many tickets mention {s}", "customer complaints about {s}", "open {s} support cases")),
    _Kind("bounces", "Show the bounced emails sent by {s}.",
          ("are {s} emails bouncing", "{s} mail bounces", "why don't {s} emails arrive")),
    _Kind("bucket_size", "Show the size of the {s} object storage bucket.",
          ("how big is the {s} bucket", "how many objects are in the {s} bucket", "{s} S3 usage")),
    _Kind("sessions", "Count the active user sessions in {s}.",
          ("how many users are logged into {s}", "active {s} sessions", "who is using {s} right now")),
    _Kind("rate_limited", "Show which clients hit the {s} rate limit.",
          ("who is being rate limited by {s}", "{s} 429s", "which clients hit the {s} limits")),
    _Kind("webhook_failures", "List the failed webhook deliveries of {s}.",
          ("which {s} webhooks failed", "are {s} webhooks delivered", "{s} webhook errors")),
    _Kind("migrations", "Show the pending database migrations of {s}.",
          ("are there pending {s} migrations", "{s} schema migrations", "did the {s} migration run")),
    _Kind("db_locks", "Show the locks held in the {s} database.",
          ("what is locking the {s} db", "{s} blocked queries", "show {s} database locks")),
    _Kind("gc_pauses", "Show the JVM garbage collection pauses of {s}.",
          ("is {s} spending time in GC", "{s} garbage collection pauses", "why does {s} stall every minute")),
    _Kind("license_seats", "Show how many licence seats of {s} are used.",
          ("how many {s} licences are left", "{s} seat count", "do we need more {s} licences")),
)  # fmt: skip


def _skill(kind: _Kind, service: str, rng: random.Random) -> Skill:
    properties: dict = {}
    required: list[str] = []
    if kind.parameter:
        name, kind_type, description = kind.parameter
        properties[name] = {"type": kind_type, "description": description}
        required.append(name)
    return Skill(
        name=f"{kind.name}_{service}",
        description=kind.description.format(s=service),
        run_image="localhost/podbot-base:latest",
        run_command=("true",),
        roles=frozenset({"user", "operator"}),
        file="(generated)",
        examples=tuple(e.format(s=service) for e in rng.sample(kind.examples, min(3, len(kind.examples)))),
        parameters={"type": "object", "properties": properties, "required": required, "additionalProperties": False},
    )


def generate(count: int, seed: int = 13) -> list[Skill]:
    """`count` skills (at most one per kind and service), spread over kinds and services."""
    rng = random.Random(seed)
    pairs = [(k, s) for k in KINDS for s in SERVICES]
    if count > len(pairs):
        raise ValueError(f"at most {len(pairs)} generated skills")
    rng.shuffle(pairs)
    return [_skill(kind, service, rng) for kind, service in pairs[:count]]
