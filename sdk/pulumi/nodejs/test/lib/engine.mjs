// A stand-in for the Pulumi engine (the `pulumi` CLI cannot be installed
// here).  It speaks the engine's side of the documented gRPC protocol
// (pulumi/pulumi proto/pulumi/*.proto, the copies shipped in @pulumi/pulumi):
//
//  * it runs a Pulumi program the way the Node.js language host does:
//    `node @pulumi/pulumi/cmd/run --monitor=... --engine=... <program>` with
//    PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS (and PULUMI_NODEJS_TYPESCRIPT
//    for a TypeScript project, which cmd/run then loads with ts-node),
//    serving the ResourceMonitor
//    (RegisterResource, RegisterResourceOutputs, SupportsFeature) and Engine
//    (Log, Get/SetRootResource) services to it;
//  * it starts the real dynamic-provider host shipped in @pulumi/pulumi
//    (cmd/dynamic-provider, what `pulumi-resource-pulumi-nodejs` runs),
//    Configures it, and drives Check/Diff/Create/Read/Update/Delete over
//    gRPC with protobuf Structs, the serialised `__provider` included;
//  * secrets follow the engine's rules: the host answers acceptSecrets=false,
//    so secret inputs are sent as plain values and outputs are marked secret
//    where the same-named input was secret (annotateSecrets in the engine's
//    provider_plugin.go) or named in additionalSecretOutputs;
//  * steps: create; same (DIFF_NONE); update; replace (create the new one,
//    delete the old one after the program, unless deleteBeforeReplace);
//    delete of resources the program no longer registers; refresh = Read of
//    every resource (an empty id drops it); destroy = Delete in reverse order
//    (skipped with retainOnDelete).
//  * `random:index/randomPassword:RandomPassword` is served by the engine
//    itself (stand-in for the random provider plugin): length, special,
//    upper, lower, numeric; `result` is a secret as in the provider's schema.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { randomInt } from "node:crypto";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const structproto = require("google-protobuf/google/protobuf/struct_pb");
const emptyproto = require("google-protobuf/google/protobuf/empty_pb");
const resproto = require("@pulumi/pulumi/proto/resource_pb");
const resrpc = require("@pulumi/pulumi/proto/resource_grpc_pb");
const engproto = require("@pulumi/pulumi/proto/engine_pb");
const engrpc = require("@pulumi/pulumi/proto/engine_grpc_pb");
const provproto = require("@pulumi/pulumi/proto/provider_pb");
const provrpc = require("@pulumi/pulumi/proto/provider_grpc_pb");

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const FEATURES = new Set(["secrets", "resourceReferences"]);
const DIFF_NONE = provproto.DiffResponse.DiffChanges.DIFF_NONE;

/** A secret property value inside the engine. */
export class Secret {
    constructor(value) { this.value = value; }
}

export function fromWire(v) {
    if (Array.isArray(v)) return v.map(fromWire);
    if (v && typeof v === "object") {
        if (v[SIG_KEY] === SECRET_SIG) return new Secret(fromWire(v.value));
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
    }
    return v;
}

function toWire(v) {
    if (v instanceof Secret) return { [SIG_KEY]: SECRET_SIG, value: toWire(v.value) };
    if (Array.isArray(v)) return v.map(toWire);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
    return v;
}

/** What a provider that does not accept secrets receives. */
export function reveal(v) {
    if (v instanceof Secret) return reveal(v.value);
    if (Array.isArray(v)) return v.map(reveal);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
    return v;
}

function containsSecrets(v) {
    if (v instanceof Secret) return true;
    if (Array.isArray(v)) return v.some(containsSecrets);
    if (v && typeof v === "object") return Object.values(v).some(containsSecrets);
    return false;
}

function isPlainObject(v) {
    return v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Secret);
}

/** The engine's annotateSecrets(outs, ins). */
function annotateSecrets(outs, ins) {
    for (const [k, inV] of Object.entries(ins || {})) {
        if (!(k in outs)) continue;
        if (isPlainObject(outs[k]) && isPlainObject(inV)) annotateSecrets(outs[k], inV);
        else if (!(outs[k] instanceof Secret) && containsSecrets(inV)) outs[k] = new Secret(outs[k]);
    }
    return outs;
}

function struct(o) {
    return structproto.Struct.fromJavaScript(o);
}

function unary(client, method, req) {
    return new Promise((resolve, reject) => client[method](req, (err, resp) => (err ? reject(err) : resolve(resp))));
}

export class Engine {
    /**
     * @param opts.project, opts.stack   names in URNs
     * @param opts.pulumiDir             node_modules/@pulumi/pulumi of the program's project
     */
    constructor({ project = "attestation-sdk", stack = "test", pulumiDir }) {
        this.project = project;
        this.stack = stack;
        this.pulumiDir = pulumiDir || dirname(require.resolve("@pulumi/pulumi/package.json"));
        this.state = new Map(); // urn -> { urn, type, custom, id, inputs, outputs, opts }
        this.order = [];        // urns in registration order
        this.outputs = {};      // stack outputs
    }

    urn(type, name, parentUrn) {
        let qualified = type;
        if (parentUrn) {
            const parentType = parentUrn.split("::")[2];
            if (parentType !== "pulumi:pulumi:Stack") qualified = `${parentType}$${type}`;
        }
        return `urn:pulumi:${this.stack}::${this.project}::${qualified}::${name}`;
    }

    /** The dynamic-provider host, started on first use in the program's directory. */
    provider(cwd) {
        // Memoised as a promise: resources registered concurrently must share
        // one host, or the second one would never be stopped.
        if (!this.providerStart) this.providerStart = this.startProvider(cwd);
        return this.providerStart;
    }

    async startProvider(cwd) {
        const host = spawn(process.execPath, [join(this.pulumiDir, "cmd/dynamic-provider/index.js"), this.engineAddr],
            { cwd, stdio: ["ignore", "pipe", "pipe"] });
        this.host = host;
        this.hostStderr = "";
        host.stderr.on("data", (d) => { this.hostStderr += d; });
        const port = await new Promise((resolve, reject) => {
            let out = "";
            host.stdout.on("data", (d) => {
                out += d;
                if (out.includes("\n")) resolve(out.trim().split("\n")[0]);
            });
            host.on("exit", (c) => reject(new Error(`dynamic provider host exited (${c}): ${this.hostStderr}`)));
        });
        this.providerClient = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        const cfg = new provproto.ConfigureRequest();
        cfg.setArgs(struct({}));
        cfg.setAcceptsecrets(true);
        cfg.setAcceptresources(true);
        const resp = await unary(this.providerClient, "configure", cfg);
        this.acceptsSecrets = resp.getAcceptsecrets();
        return this.providerClient;
    }

    async startServers() {
        this.server = new grpc.Server();
        const self = this;
        // A failed step fails the update: like the engine's monitor, answer
        // the program with CANCELLED so the SDK stops quietly; the error
        // (the provider's message) is what `pulumi up` prints.
        const handle = (fn) => (call, cb) => fn.call(self, call.request).then((r) => cb(null, r), (e) => {
            self.errors.push(e.details || e.message || String(e));
            cb({ code: grpc.status.CANCELLED, details: "update failed" });
        });
        this.server.addService(engrpc.EngineService, {
            log: handle(async (req) => {
                this.logs.push({ severity: req.getSeverity(), message: req.getMessage(), urn: req.getUrn() });
                return new emptyproto.Empty();
            }),
            getRootResource: handle(async () => {
                const r = new engproto.GetRootResourceResponse();
                r.setUrn(this.rootUrn || "");
                return r;
            }),
            setRootResource: handle(async (req) => {
                this.rootUrn = req.getUrn();
                return new engproto.SetRootResourceResponse();
            }),
        });
        this.server.addService(resrpc.ResourceMonitorService, {
            supportsFeature: handle(async (req) => {
                const r = new resproto.SupportsFeatureResponse();
                r.setHassupport(FEATURES.has(req.getId()));
                return r;
            }),
            registerResource: handle(this.registerResource),
            registerResourceOutputs: handle(async (req) => {
                if (req.getUrn() === this.rootUrn || req.getUrn().endsWith(`::pulumi:pulumi:Stack::${this.project}-${this.stack}`)) {
                    this.outputs = fromWire(req.getOutputs() ? req.getOutputs().toJavaScript() : {});
                }
                return new emptyproto.Empty();
            }),
        });
        const port = await new Promise((resolve, reject) =>
            this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
        this.engineAddr = `127.0.0.1:${port}`;
    }

    async registerResource(req) {
        const type = req.getType(), name = req.getName();
        const urn = this.urn(type, name, req.getParent());
        const resp = new resproto.RegisterResourceResponse();
        resp.setUrn(urn);
        this.registered.add(urn);
        if (!req.getCustom()) {
            this.record({ urn, type, custom: false, id: "", inputs: {}, outputs: {}, opts: {} });
            resp.setObject(struct({}));
            return resp;
        }
        const news = fromWire(req.getObject() ? req.getObject().toJavaScript() : {});
        const opts = {
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            retainOnDelete: req.getRetainondelete(),
        };
        let result;
        if (type.startsWith("pulumi-nodejs:dynamic")) {
            result = await this.dynamicStep(urn, type, news, opts);
        } else if (type === "random:index/randomPassword:RandomPassword") {
            result = this.randomPasswordStep(urn, type, news, opts);
        } else {
            throw new Error(`stand-in engine: no provider for ${type}`);
        }
        for (const k of opts.additionalSecretOutputs) {
            if (k in result.outputs && !(result.outputs[k] instanceof Secret)) result.outputs[k] = new Secret(result.outputs[k]);
        }
        this.record(result);
        resp.setId(result.id);
        resp.setObject(struct(toWire(result.outputs)));
        return resp;
    }

    record(r) {
        if (!this.state.has(r.urn)) this.order.push(r.urn);
        this.state.set(r.urn, r);
    }

    async dynamicStep(urn, type, news, opts) {
        const prov = await this.provider(this.cwd);
        const old = this.state.get(urn);
        const check = new provproto.CheckRequest();
        check.setUrn(urn);
        check.setOlds(struct(old ? reveal(old.inputs) : {}));
        check.setNews(struct(reveal(news)));
        const checked = await unary(prov, "check", check);
        const failures = checked.getFailuresList();
        if (failures.length) {
            throw new Error(`${urn}: check failed: ${failures.map((f) => `${f.getProperty()}: ${f.getReason()}`).join("; ")}`);
        }
        const inputs = annotateSecrets(fromWire(checked.getInputs().toJavaScript()), news);
        if (old) {
            const diff = new provproto.DiffRequest();
            diff.setId(old.id);
            diff.setUrn(urn);
            diff.setOlds(struct(reveal(old.outputs)));
            diff.setNews(struct(reveal(inputs)));
            diff.setOldInputs(struct(reveal(old.inputs)));
            const d = await unary(prov, "diff", diff);
            const replaces = d.getReplacesList();
            if (d.getChanges() === DIFF_NONE) {
                this.steps.push({ op: "same", urn });
                return { ...old, inputs, opts };
            }
            if (replaces.length) {
                this.steps.push({ op: "replace", urn, replaces });
                if (d.getDeletebeforereplace() || opts.deleteBeforeReplace) {
                    await this.deleteResource(old);
                } else {
                    this.pendingDeletes.push(old);
                }
                return this.create(prov, urn, type, inputs, opts);
            }
            const up = new provproto.UpdateRequest();
            up.setId(old.id);
            up.setUrn(urn);
            up.setOlds(struct(reveal(old.outputs)));
            up.setNews(struct(reveal(inputs)));
            up.setOldInputs(struct(reveal(old.inputs)));
            const u = await unary(prov, "update", up);
            this.steps.push({ op: "update", urn });
            const outputs = annotateSecrets(fromWire(u.getProperties().toJavaScript()), inputs);
            return { urn, type, custom: true, id: old.id, inputs, outputs, opts };
        }
        return this.create(prov, urn, type, inputs, opts);
    }

    async create(prov, urn, type, inputs, opts) {
        const req = new provproto.CreateRequest();
        req.setUrn(urn);
        req.setProperties(struct(reveal(inputs)));
        const r = await unary(prov, "create", req);
        this.steps.push({ op: "create", urn });
        const outputs = annotateSecrets(fromWire(r.getProperties().toJavaScript()), inputs);
        return { urn, type, custom: true, id: r.getId(), inputs, outputs, opts };
    }

    randomPasswordStep(urn, type, news, opts) {
        const old = this.state.get(urn);
        if (old && JSON.stringify(reveal(old.inputs)) === JSON.stringify(reveal(news))) {
            this.steps.push({ op: "same", urn });
            return old;
        }
        const p = reveal(news);
        let alphabet = "";
        if (p.upper !== false) alphabet += "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        if (p.lower !== false) alphabet += "abcdefghijklmnopqrstuvwxyz";
        if (p.numeric !== false) alphabet += "0123456789";
        if (p.special !== false) alphabet += p.overrideSpecial || "!@#$%&*()-_=+[]{}<>:?";
        let result = "";
        for (let i = 0; i < p.length; i++) result += alphabet[randomInt(alphabet.length)];
        this.steps.push({ op: old ? "replace" : "create", urn });
        return { urn, type, custom: true, id: "none", inputs: news, outputs: { ...news, result: new Secret(result) }, opts };
    }

    async deleteResource(r) {
        if (r.custom && !r.opts.retainOnDelete && r.type.startsWith("pulumi-nodejs:dynamic")) {
            const prov = await this.provider(this.cwd);
            const req = new provproto.DeleteRequest();
            req.setId(r.id);
            req.setUrn(r.urn);
            req.setProperties(struct(reveal(r.outputs)));
            req.setOldInputs(struct(reveal(r.inputs)));
            await unary(prov, "delete", req);
        }
        this.steps.push({ op: "delete", urn: r.urn });
    }

    forget(urn) {
        this.state.delete(urn);
        this.order = this.order.filter((u) => u !== urn);
    }

    reset() {
        this.steps = [];
        this.errors = [];
        this.logs = [];
        this.pendingDeletes = [];
        this.registered = new Set();
    }

    /**
     * `pulumi up`: run the program, then delete replaced resources and those
     * the program no longer registers.  Resolves to { ok, steps, errors, logs,
     * outputs, stderr }.
     */
    async up(program, { config = {}, secretKeys = [], cwd, typescript = false } = {}) {
        this.reset();
        this.cwd = cwd || dirname(program);
        if (!this.server) await this.startServers();
        const env = {
            ...process.env,
            PULUMI_CONFIG: JSON.stringify(config),
            PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(secretKeys),
        };
        if (typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true"; // what the language host sets for `runtime: nodejs`
        const args = [join(this.pulumiDir, "cmd/run"), `--monitor=${this.engineAddr}`, `--engine=${this.engineAddr}`,
            `--project=${this.project}`, `--stack=${this.stack}`, `--pwd=${this.cwd}`, "--parallel=4", program];
        const child = spawn(process.execPath, args, { cwd: this.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let stderr = "";
        child.stdout.on("data", (d) => { stderr += d; });
        child.stderr.on("data", (d) => { stderr += d; });
        const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c)));
        let ok = code === 0 && this.errors.length === 0;
        if (ok) {
            try {
                for (const old of this.pendingDeletes) await this.deleteResource(old);
                for (const urn of [...this.order].reverse()) {
                    if (!this.registered.has(urn)) {
                        await this.deleteResource(this.state.get(urn));
                        this.forget(urn);
                    }
                }
            } catch (e) {
                this.errors.push(e.message);
                ok = false;
            }
        }
        return { ok, code, steps: this.steps, errors: this.errors, logs: this.logs, outputs: this.outputs, stderr };
    }

    /** `pulumi refresh`: Read every custom resource. */
    async refresh() {
        this.reset();
        for (const urn of [...this.order]) {
            const r = this.state.get(urn);
            if (!r.custom || !r.type.startsWith("pulumi-nodejs:dynamic")) continue;
            const prov = await this.provider(this.cwd);
            const req = new provproto.ReadRequest();
            req.setId(r.id);
            req.setUrn(urn);
            req.setProperties(struct(reveal(r.outputs)));
            req.setInputs(struct(reveal(r.inputs)));
            const resp = await unary(prov, "read", req);
            if (!resp.getId()) {
                this.steps.push({ op: "delete", urn });
                this.forget(urn);
                continue;
            }
            const outputs = annotateSecrets(annotateSecrets(fromWire(resp.getProperties().toJavaScript()), r.outputs), r.inputs);
            const changed = JSON.stringify(reveal(outputs)) !== JSON.stringify(reveal(r.outputs));
            this.steps.push({ op: changed ? "refresh-update" : "same", urn });
            this.state.set(urn, { ...r, id: resp.getId(), outputs });
        }
        return { ok: true, steps: this.steps };
    }

    /** `pulumi destroy`: Delete in reverse registration order. */
    async destroy() {
        this.reset();
        try {
            for (const urn of [...this.order].reverse()) {
                await this.deleteResource(this.state.get(urn));
                this.forget(urn);
            }
        } catch (e) {
            this.errors.push(e.details || e.message);
            return { ok: false, steps: this.steps, errors: this.errors };
        }
        this.outputs = {};
        return { ok: true, steps: this.steps, errors: this.errors };
    }

    /** The state entry of the resource named `name`. */
    resource(name) {
        for (const r of this.state.values()) if (r.urn.endsWith(`::${name}`)) return r;
        return undefined;
    }

    /** Stop the provider host and the gRPC servers; nothing may keep the
     *  test process alive afterwards (a call still open on the servers, a
     *  host that ignores SIGTERM). */
    async close() {
        if (this.providerStart) await this.providerStart.catch(() => {});
        const grace = (ms) => new Promise((r) => setTimeout(r, ms).unref());
        if (this.providerClient) this.providerClient.close();
        if (this.host && this.host.exitCode === null && this.host.signalCode === null) {
            const exited = new Promise((r) => this.host.once("exit", r));
            this.host.kill("SIGTERM");
            await Promise.race([exited, grace(5000)]);
            if (this.host.exitCode === null && this.host.signalCode === null) this.host.kill("SIGKILL");
        }
        if (this.server) {
            await Promise.race([new Promise((r) => this.server.tryShutdown(r)), grace(5000)]);
            this.server.forceShutdown();
            this.server = null;
        }
    }
}
