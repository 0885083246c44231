# mkimg.itl.sh - Alpine mkimage profile for the USB registration agent
# (aports/scripts/mkimage.sh --profile itl; see packaging/usb-agent/build-usb.sh).
profile_itl() {
	profile_standard
	title="ITL USB registration agent"
	desc="Registers this machine's TPM with attestd (attest-agent register)."
	# the agent's libraries; the binary itself comes with the overlay
	apks="$apks openssl jansson tpm2-tss-esys tpm2-tss-mu tpm2-tss-rc tpm2-tss-tctildr tpm2-tss-tcti-device ca-certificates"
	# set the service in the boot menu, or edit the stick's boot config later
	kernel_cmdline="itl.reg_url=https://attest.example itl.role=worker-app"
	apkovl="genapkovl-itl.sh"
	hostname="itl-register"
}
