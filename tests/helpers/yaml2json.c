/* yaml2json - parse YAML with libfyaml (the service's own YAML parser)
 * and print each document as one line of JSON, for jq.
 *
 *   yaml2json FILE
 * Exit status 1 when the file is not valid YAML.  Used by the tests to
 * check what the service serves (the generic partial config) and the
 * packaging files parse and say what they should. */
#include <stdio.h>
#include <stdlib.h>

#include <libfyaml.h>

int main(int argc, char **argv)
{
	struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET };
	struct fy_parser *fyp;
	struct fy_document *fyd;
	int n = 0, rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: yaml2json FILE\n");
		return 2;
	}
	fyp = fy_parser_create(&cfg);
	if (!fyp || fy_parser_set_input_file(fyp, argv[1]) != 0) {
		fprintf(stderr, "yaml2json: cannot read %s\n", argv[1]);
		return 1;
	}
	while ((fyd = fy_parse_load_document(fyp)) != NULL) {
		char *s = fy_emit_document_to_string(fyd, FYECF_MODE_JSON_ONELINE);

		if (!s) {
			rc = 1;
		} else {
			/* an empty document emits nothing: print null for it */
			printf("%s\n", s[0] && s[0] != '\n' ? s : "null");
			free(s);
		}
		fy_parse_document_destroy(fyp, fyd);
		n++;
	}
	if (fy_parser_get_stream_error(fyp)) {
		fprintf(stderr, "yaml2json: %s is not valid YAML\n", argv[1]);
		rc = 1;
	}
	fy_parser_destroy(fyp);
	return n == 0 ? 1 : rc;
}
