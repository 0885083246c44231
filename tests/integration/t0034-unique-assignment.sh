#!/bin/sh
# Hostnames are unique case-insensitively and addresses in canonical form
# (issue 19, hole 12): node-1/NODE-1 and 10.0.0.5/::ffff:10.0.0.5 are the
# same assignment.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
reg() { make_ek "$1" ec; admin POST /api/v1/register "$(node_body)"; jget .machine_id; }
A=$(reg a); B=$(reg b); C=$(reg c)
admin POST "/api/v1/machines/$A/approve" '{"role":"worker-app","hostname":"node-1","assigned_ip":"10.0.0.5/24"}'
expect 200 "first machine gets node-1 / 10.0.0.5"
admin POST "/api/v1/machines/$B/approve" '{"role":"worker-app","hostname":"NODE-1"}'
expect 409 "NODE-1 is node-1" ".detail | test(\"hostname 'node-1' is already assigned to machine $A\")"
admin POST "/api/v1/machines/$B/approve" '{"role":"worker-app","hostname":"Node-1.Example"}'
expect 200 "a different name in mixed case is stored in lowercase" '.hostname == "node-1.example"'
admin POST "/api/v1/machines/$C/approve" '{"role":"worker-app","hostname":"NODE-1.example"}'
expect 409 "and is unique case-insensitively too"
admin POST "/api/v1/machines/$C/approve" '{"role":"worker-app","assigned_ip":"::ffff:10.0.0.5"}'
expect 409 "::ffff:10.0.0.5 is 10.0.0.5" ".detail | test(\"already assigned to machine $A\")"
admin POST "/api/v1/machines/$C/approve" '{"role":"worker-app","assigned_ip":"::FFFF:10.0.0.6/120"}'
expect 200 "an IPv4-mapped address is stored as IPv4" '.assigned_ip == "10.0.0.6/24"'
sql "UPDATE machines SET hostname = 'LEGACY-Host' WHERE machine_id = '$C'"
D=$(reg d)
admin POST "/api/v1/machines/$D/approve" '{"role":"worker-app","hostname":"legacy-host"}'
expect 409 "a row stored in mixed case before still counts" ".detail | test(\"machine $C\")"
done_testing
