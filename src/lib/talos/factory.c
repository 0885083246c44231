#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "talos/factory.h"

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct att_buf *b = ud;
	size_t n = size * nmemb;

	return att_buf_append(b, data, n) == 0 ? n : 0;
}

int att_factory_post_schematic(const char *factory_url, const char *yaml, long timeout_seconds,
			       char ret_id[65], char *reterr, size_t errlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct att_buf body;
	char *url = NULL;
	long code = 0;
	CURLcode cc;
	int r = ATT_E_UNAVAILABLE;

	if (!h)
		return ATT_E_NOMEM;
	att_buf_init(&body, 64 * 1024);
	url = att_asprintf("%s/schematics", factory_url);
	hdr = curl_slist_append(hdr, "Content-Type: application/yaml");
	if (!url || !hdr) {
		r = ATT_E_NOMEM;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, yaml);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_seconds);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_seconds);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		snprintf(reterr, errlen, "%s", curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 500) {
		snprintf(reterr, errlen, "HTTP %ld from %s", code, url);
		goto out;
	}
	r = ATT_E_PARSE;
	if (code != 200 && code != 201) {
		snprintf(reterr, errlen, "HTTP %ld from %s", code, url);
		goto out;
	}
	{
		json_t *o = json_loadb(body.p ? body.p : "", body.len, 0, NULL);
		json_t *id = json_object_get(o, "id");

		if (json_is_string(id) && json_string_length(id) == 64 &&
		    att_is_hex(json_string_value(id), 64)) {
			memcpy(ret_id, json_string_value(id), 65);
			r = 0;
		} else {
			snprintf(reterr, errlen, "Unexpected response from Talos Image Factory");
		}
		json_decref(o);
	}
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	att_buf_release(&body);
	free(url);
	return r;
}

char *att_factory_iso_url(const char *factory_url, const char *id, const char *version)
{
	return att_asprintf("%s/image/%s/%s/metal-amd64.iso", factory_url, id, version);
}

char *att_factory_installer_image(const char *factory_url, const char *id, const char *version)
{
	const char *host = strstr(factory_url, "://");

	host = host ? host + 3 : factory_url;
	return att_asprintf("%s/installer/%s:%s", host, id, version);
}
