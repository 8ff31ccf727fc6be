// Offline schema tooling, run through `cargo xtask schema` (or directly: node router/schema-tools.mjs <command>).
//
//   compose [--check]   compose supergraph.yaml's subgraph SDL files into schema/supergraph.graphql, and its
//                       public API schema into schema/api.graphql (--check: fail if either committed file
//                       differs from a fresh composition)
//   breaking            fail on breaking changes to the supergraph's public API that schema/breaking-changes.md
//                       does not acknowledge, across every committed version and the working tree
//   licence             fail on anything that makes an unlicensed Apollo Router refuse to start
//
// Composition uses @theguild/federation-composition, pinned in package-lock.json: no network, no plugins.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, buildASTSchema, printSchema, lexicographicSortSchema } from "graphql";
import YAML from "yaml";
import { composeServices, transformSupergraphToPublicSchema } from "@theguild/federation-composition";
import { diff, CriticalityLevel } from "@graphql-inspector/core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const at = (p) => resolve(root, p);
const SUPERGRAPH = "schema/supergraph.graphql";
// The public API schema: the supergraph as clients see it, without the join__/link machinery — what the
// partner SDK (`clients/`) compiles its operations against.
const API = "schema/api.graphql";
const ACKNOWLEDGED = "schema/breaking-changes.md";

function fail(lines) {
  for (const line of [].concat(lines)) console.error(line);
  process.exit(1);
}

function compose() {
  const config = YAML.parse(readFileSync(at("supergraph.yaml"), "utf8"));
  const services = Object.entries(config.subgraphs ?? {}).map(([name, sub]) => {
    const file = sub?.schema?.file;
    if (!file || !sub.routing_url) fail(`supergraph.yaml: subgraph ${name} needs routing_url and schema.file`);
    if (!existsSync(at(file))) fail(`supergraph.yaml: ${name}'s schema ${file} does not exist (run cargo xtask schema)`);
    return { name, url: sub.routing_url, typeDefs: parse(readFileSync(at(file), "utf8")) };
  });
  if (services.length === 0) fail("supergraph.yaml lists no subgraphs");
  const result = composeServices(services);
  if (result.errors?.length) {
    fail(["composition failed:", ...result.errors.map((e) => `  - ${e.message}${e.extensions?.code ? ` [${e.extensions.code}]` : ""}`)]);
  }
  return result.supergraphSdl.trimEnd() + "\n";
}

function publicSchema(supergraphSdl, label) {
  try {
    return buildASTSchema(transformSupergraphToPublicSchema(parse(supergraphSdl)), { assumeValidSDL: true });
  } catch (e) {
    fail(`${label}: ${SUPERGRAPH} is not a valid supergraph: ${e.message}`);
  }
}

function git(args) {
  return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

async function breaking() {
  // Every committed version of the supergraph, oldest first, then the working tree if it differs.
  let versions = [];
  try {
    const commits = git(["log", "--format=%H", "--reverse", "--", SUPERGRAPH]).split("\n").filter(Boolean);
    versions = commits.map((c) => ({ label: c.slice(0, 10), sdl: git(["show", `${c}:${SUPERGRAPH}`]) }));
  } catch {
    console.error("no git history available: checking the working tree against nothing");
  }
  if (existsSync(at(SUPERGRAPH))) {
    const current = readFileSync(at(SUPERGRAPH), "utf8");
    if (versions.length === 0 || versions[versions.length - 1].sdl !== current) versions.push({ label: "working tree", sdl: current });
  }
  const acknowledged = new Set(
    existsSync(at(ACKNOWLEDGED))
      ? readFileSync(at(ACKNOWLEDGED), "utf8").split("\n").filter((l) => l.startsWith("- ")).map((l) => l.slice(2).trim())
      : [],
  );
  const unacknowledged = [];
  for (let i = 1; i < versions.length; i++) {
    const changes = await diff(publicSchema(versions[i - 1].sdl, versions[i - 1].label), publicSchema(versions[i].sdl, versions[i].label));
    for (const change of changes) {
      if (change.criticality.level === CriticalityLevel.Breaking && !acknowledged.has(change.message)) {
        unacknowledged.push(`  ${versions[i - 1].label} → ${versions[i].label}: ${change.message}`);
      }
    }
  }
  if (unacknowledged.length) {
    fail([
      "breaking changes to the public API:",
      ...unacknowledged,
      `If they are intended, list each message as a "- " line in ${ACKNOWLEDGED}, where reviewers see it.`,
    ]);
  }
  console.log(`no unacknowledged breaking changes across ${versions.length} supergraph version(s)`);
}

// Top-level keys of Apollo Router 2.x config that need a GraphOS licence (the router refuses to start
// with them and no licence), and the `limits` keys that are operation limits (also licensed).
const LICENSED_KEYS = ["authentication", "authorization", "coprocessor", "demand_control", "subscription",
  "preview_entity_cache", "preview_file_uploads", "persisted_queries", "connectors"];
const LICENSED_LIMITS = ["max_depth", "max_height", "max_aliases", "max_root_fields"];
const LICENSED_LINKS = ["https://specs.apollo.dev/authenticated", "https://specs.apollo.dev/requiresScopes",
  "https://specs.apollo.dev/policy"];

function licence() {
  const problems = [];
  const config = YAML.parse(readFileSync(at("router/apollo.yaml"), "utf8")) ?? {};
  for (const key of LICENSED_KEYS) {
    if (key in config && !(key === "subscription" && config[key]?.enabled === false)) {
      problems.push(`router/apollo.yaml: \`${key}\` needs a GraphOS licence`);
    }
  }
  for (const key of LICENSED_LIMITS) {
    for (const limits of [config.limits, config.limits?.router]) {
      if (limits && key in limits) problems.push(`router/apollo.yaml: \`limits.${key}\` needs a GraphOS licence`);
    }
  }
  const files = [SUPERGRAPH, ...Object.values(YAML.parse(readFileSync(at("supergraph.yaml"), "utf8")).subgraphs).map((s) => s.schema.file)];
  for (const file of files) {
    const sdl = readFileSync(at(file), "utf8");
    for (const link of LICENSED_LINKS) if (sdl.includes(link)) problems.push(`${file}: links ${link}, which needs a GraphOS licence`);
    for (const d of ["@authenticated", "@requiresScopes", "@policy"]) {
      if (new RegExp(`${d}\\b`).test(sdl)) problems.push(`${file}: uses ${d}; permissions are enforced in the subgraphs instead`);
    }
  }
  if (problems.length) fail(problems);
  console.log("nothing here needs an Apollo GraphOS licence");
}

const [command, flag] = process.argv.slice(2);
switch (command) {
  case "compose": {
    const sdl = compose();
    const api = printSchema(lexicographicSortSchema(publicSchema(sdl, "compose"))).trimEnd() + "\n";
    for (const [file, text, what] of [
      [SUPERGRAPH, sdl, "the composition of the subgraph schemas"],
      [API, api, "the public API schema of the composition"],
    ]) {
      if (flag === "--check") {
        const committed = existsSync(at(file)) ? readFileSync(at(file), "utf8") : "";
        if (committed !== text) fail(`${file} is not ${what}: run cargo xtask schema and commit`);
        console.log(`${file} is current`);
      } else {
        writeFileSync(at(file), text);
        console.log(`wrote ${file}`);
      }
    }
    break;
  }
  case "breaking":
    await breaking();
    break;
  case "licence":
    licence();
    break;
  default:
    fail("usage: node router/schema-tools.mjs compose [--check] | breaking | licence");
}
