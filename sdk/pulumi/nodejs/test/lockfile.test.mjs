// The committed lockfiles pin packages that run on Debian 12's Node.js
// (18.19, what scripts/deps.sh installs from apt when no node is present).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const semver = require("semver");
const HERE = dirname(fileURLToPath(import.meta.url));
const DEBIAN12_NODE = "18.19.0";

for (const dir of [join(HERE, ".."), join(HERE, "../../../../examples/pulumi-demo")]) {
    test(`every package in ${dir.split("/").slice(-2).join("/")}/package-lock.json supports Node ${DEBIAN12_NODE}`, () => {
        const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8"));
        assert.ok(lock.lockfileVersion >= 2);
        const bad = [];
        let n = 0;
        for (const [path, pkg] of Object.entries(lock.packages)) {
            if (!path.startsWith("node_modules/")) continue;
            n++;
            const range = pkg.engines && pkg.engines.node;
            if (range && !semver.satisfies(DEBIAN12_NODE, range)) bad.push(`${path}@${pkg.version}: node ${range}`);
        }
        assert.ok(n > 50, "the lockfile lists the dependency tree");
        assert.deepEqual(bad, []);
    });
}
