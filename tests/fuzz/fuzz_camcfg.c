/* fuzz_camcfg.c: libFuzzer harness for the edge's cameras document parser (central pushes it over the uplink). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "edge_camcfg.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct edge_camcfg cfg; /* large: not on the stack */
	char err[512];
	int rc, i;

	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	rc = edge_camcfg_parse((const char *)data, size, &cfg, err, sizeof(err));
	if (rc < 0) {
		/* a refusal always says why */
		CHECK(err[0] != '\0');
		return 0;
	}
	CHECK(rc == 0);
	CHECK(cfg.ncameras >= 0 && cfg.ncameras <= EDGE_MAX_CAMERAS);
	for (i = 0; i < cfg.ncameras; i++) {
		const struct edge_camera_cfg *c = &cfg.cameras[i];

		CHECK(c->id[0] != '\0');
		CHECK(memchr(c->id, '\0', sizeof(c->id)) != NULL);
		CHECK(memchr(c->main_url, '\0', sizeof(c->main_url)) != NULL);
		CHECK(strncmp(c->main_url, "rtsp", 4) == 0);
	}
	return 0;
}
