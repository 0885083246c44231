"""pulumi_provider against a real attestd: the client (standard library), and
the providers' create/read/diff/update/delete as the engine calls them (plain
dicts in, result objects out), with pulumi.dynamic replaced by tests/stubs."""
import shutil
import socket
import unittest

from fixtures import TMP, Attestd, Issuer, make_ek
from pulumi_provider import AttestationClient, AttestationError, MachineApproval, NodeRole, RegisteredMachine
from pulumi_provider.provider import MachineApprovalProvider, RegisteredMachineProvider


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


class ClientTest(unittest.TestCase):
    def test_client_calls_and_errors(self):
        svc = Attestd()
        try:
            c = AttestationClient(svc.base + "/", svc.admin)
            pem, fp = make_ek("py-client")
            from pulumi_provider import ek_material_base64
            r = c.register({"ek_fingerprint": fp, "ek_cert_pem": ek_material_base64(pem), "hw_serial": "S1"})
            self.assertEqual(r["status"], "registered")
            self.assertIsNone(r["config_token"])
            mid = r["machine_id"]
            self.assertEqual(c.get_machine(mid)["hw_serial"], "S1")
            self.assertEqual(c.whoami()["identity"], "SYSTEM")
            a = c.approve(mid, "worker-app", "py-01", "10.8.0.1")
            self.assertTrue(a.approved)
            self.assertEqual(a.machine["assigned_ip"], "10.8.0.1/32")
            self.assertEqual(c.lock(mid, "t")["status"], "locked")
            self.assertEqual(c.unlock(mid)["status"], "registered")
            self.assertEqual(c.revoke(mid, False, "done")["status"], "revoked")
            with self.assertRaises(AttestationError) as e:
                c.revoke(mid)
            self.assertEqual(e.exception.status, 409)
            self.assertIn("already revoked", e.exception.detail)
            with self.assertRaises(AttestationError) as e:
                AttestationClient(svc.base, "nope").get_machine(mid)
            self.assertEqual(e.exception.status, 401)
            self.assertIn("check the operator token", str(e.exception))
            with self.assertRaises(AttestationError) as e:
                c.register({"ek_fingerprint": "zz", "ek_cert_pem": "AAAA"})
            self.assertEqual(e.exception.status, 422)
            self.assertTrue(e.exception.detail.startswith("ek_fingerprint: "))
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            with self.assertRaises(AttestationError) as e:
                AttestationClient(f"http://127.0.0.1:{port}", "tok-py-secret").whoami()
            self.assertEqual(e.exception.status, 0)
            self.assertIn("is unreachable", str(e.exception))
            self.assertNotIn("tok-py-secret", str(e.exception))
        finally:
            self.assertEqual(svc.stop(), 0, "attestd shut down cleanly")


class ProviderTest(unittest.TestCase):
    def test_machine_lifecycle_and_drift(self):
        svc = Attestd()
        try:
            mp, ap = RegisteredMachineProvider(), MachineApprovalProvider()
            pem, fp = make_ek("py-life")
            base = {"endpoint": svc.base, "token": svc.admin}
            chk = mp.check({}, {**base, "ek_fingerprint": fp.upper(), "ek_cert_pem": pem, "hw_mac": "52-54-00-AA-00-01",
                                "desired_role": NodeRole.worker_app.value})
            self.assertEqual(chk.failures, [])
            self.assertEqual(chk.inputs["hw_mac"], "52:54:00:aa:00:01")
            created = mp.create(chk.inputs)
            mid, outs = created.id, created.outs
            self.assertEqual(outs["status"], "registered")
            self.assertIsNone(outs["config_token"])
            ain = ap.check({}, {**base, "machine_id": mid, "role": "worker-app", "hostname": "py-02", "assigned_ip": "10.8.0.2"}).inputs
            aouts = ap.create(ain).outs
            self.assertTrue(aouts["approved"])
            self.assertFalse(ap.diff(mid, aouts, ain).changes, "nothing to do")
            self.assertFalse(mp.diff(mid, outs, chk.inputs).changes)
            news = {**ain, "hostname": "py-02b"}
            d = ap.diff(mid, aouts, news)
            self.assertTrue(d.changes)
            self.assertEqual(d.replaces, [])
            aouts = ap.update(mid, aouts, news).outs
            self.assertEqual(AttestationClient(svc.base, svc.admin).get_machine(mid)["hostname"], "py-02b")
            # drift: locked outside Pulumi
            AttestationClient(svc.base, svc.admin).lock(mid, "incident")
            outs = mp.read(mid, outs).outs
            self.assertEqual(outs["status"], "locked")
            d = mp.diff(mid, outs, chk.inputs)
            self.assertEqual(d.replaces, ["status"])
            self.assertFalse(d.delete_before_replace)
            with self.assertRaises(AttestationError) as e:
                mp.create(chk.inputs)
            self.assertEqual(e.exception.status, 409)
            self.assertIn("re-registration is not allowed", e.exception.detail)
            # check failures
            bad = mp.check({}, {**base, "ek_fingerprint": "xyz", "ek_cert_pem": pem, "desired_role": "db"})
            self.assertEqual(sorted(f.property for f in bad.failures), ["desired_role", "ek_fingerprint"])
            # keep_on_delete, then a real delete
            ap.delete(mid, {**aouts, "keep_on_delete": True})
            self.assertEqual(AttestationClient(svc.base, svc.admin).get_machine(mid)["status"], "locked")
            mp.delete(mid, {**outs, "revoke_reason": "py destroy"})
            self.assertEqual(AttestationClient(svc.base, svc.admin).get_machine(mid)["status"], "revoked")
            mp.delete(mid, outs)  # already revoked: nothing to do
            self.assertEqual(mp.read(mid, outs).outs["status"], "revoked")
        finally:
            self.assertEqual(svc.stop(), 0)

    def test_dual_control_two_operators(self):
        issuer = Issuer()
        svc = Attestd(ITL_DUAL_CONTROL_ROLES="controlplane", **issuer.env)
        try:
            alice, bob = issuer.mint("alice"), issuer.mint("bob")
            mp, ap = RegisteredMachineProvider(), MachineApprovalProvider()
            pem, fp = make_ek("py-dual")
            m = mp.create(mp.check({}, {"endpoint": svc.base, "token": alice, "ek_fingerprint": fp, "ek_cert_pem": pem,
                                        "desired_role": "controlplane", "pre_approve": False}).inputs)
            self.assertEqual(m.outs["status"], "pending_approval")
            ain = ap.check({}, {"endpoint": svc.base, "token": alice, "machine_id": m.id, "role": "controlplane",
                                "hostname": "cp-py"}).inputs
            outs = ap.create(ain).outs
            self.assertFalse(outs["approved"])
            self.assertTrue(outs["message"].startswith("waiting for 1 more approval"), outs["message"])
            self.assertTrue(ap.diff(m.id, outs, ain).changes, "still waiting: up tries again")
            outs = ap.update(m.id, outs, ain).outs
            self.assertFalse(outs["approved"], "alice again: no second vote, no error")
            self.assertEqual(len(AttestationClient(svc.base, alice).approvals(m.id)), 1)
            outs = ap.read(m.id, outs).outs
            self.assertEqual(outs["approvals_received"], 1)
            bob_in = {**ain, "token": bob}
            outs = ap.update(m.id, outs, bob_in).outs
            self.assertTrue(outs["approved"])
            self.assertEqual(AttestationClient(svc.base, bob).get_machine(m.id)["status"], "registered")
        finally:
            self.assertEqual(svc.stop(), 0)
            issuer.close()

    def test_resources_pass_secrets_and_outputs(self):
        r = RegisteredMachine("m", endpoint="http://x", token="t", ek_fingerprint="ab", ek_cert_pem="pem",
                              desired_role=NodeRole.controlplane)
        self.assertTrue(r.props["token"].is_secret and r.props["ek_cert_pem"].is_secret)
        self.assertEqual(r.props["desired_role"], "controlplane")
        self.assertIn("config_token", r.opts.additional_secret_outputs)
        self.assertIn("machine_id", r.props)
        a = MachineApproval("a", endpoint="http://x", token="t", machine_id="id", role=NodeRole.worker_app)
        self.assertEqual(a.props["role"], "worker-app")
        self.assertIn("message", a.props)


if __name__ == "__main__":
    unittest.main()
