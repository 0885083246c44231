#!/bin/sh
# notify-pending.sh - an exec hook (docs/exec-hooks.md) telling the ops
# channel that a node waits for approval (seed 000, "Slack / Teams alert
# on pending approval"), to Slack (incoming webhook: {"text": ...}) and/or
# Microsoft Teams (incoming webhook: a MessageCard).
#
#   ITL_EXEC_HOOKS='[{"name":"chat","command":["/usr/local/lib/attestd/notify-pending.sh"],
#                     "events":["node.registered"],
#                     "env":{"SLACK_WEBHOOK_URL":"https://hooks.slack.com/services/...",
#                            "TEAMS_WEBHOOK_URL":"https://example.webhook.office.com/webhookb2/..."}}]'
#
# Messages are built with jq (event values are data, never markup you
# did not intend: Slack's &, <, > are escaped).
set -eu
event=$(cat)
[ "$(printf '%s' "$event" | jq -r .event)" = node.registered ] || exit 0
text=$(printf '%s' "$event" | jq -r '
	def esc: gsub("&"; "&amp;") | gsub("<"; "&lt;") | gsub(">"; "&gt;");
	":new: *New node pending approval*\nEK: `\(.ek_fingerprint[0:24] // "none")…`\nMAC: `\(.mac_address // "unknown" | esc)` | TPM: \(if .tpm_available then "yes" else "no" end)\nProduct: \(.hardware.hw_product // "unknown" | esc)"')
post() { # post URL JSON
	code=$(printf '%s' "$2" | curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
		-H 'Content-Type: application/json' --data-binary @- "$1") || return 1
	case $code in 2??) return 0 ;; 408 | 429 | 5??) echo "HTTP $code" >&2; return 1 ;; *) echo "refused: HTTP $code" >&2; exit 100 ;; esac
}
if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
	post "$SLACK_WEBHOOK_URL" "$(jq -cn --arg t "$text" '{text: $t}')"
fi
if [ -n "${TEAMS_WEBHOOK_URL:-}" ]; then
	post "$TEAMS_WEBHOOK_URL" "$(printf '%s' "$event" | jq -c --arg t "$text" '{
		"@type": "MessageCard", "@context": "https://schema.org/extensions",
		summary: "New node pending approval", themeColor: "0076D7", text: $t,
		sections: [{facts: [{name: "Machine", value: .machine_id}, {name: "MAC", value: (.mac_address // "unknown")},
		                    {name: "Product", value: (.hardware.hw_product // "unknown")}]}]}')"
fi
