/* edge_recover.h: start-up reconciliation of the archive index with the segment files on disk. */
#ifndef EDGE_RECOVER_H
#define EDGE_RECOVER_H

#include <stdint.h>

#include "edge_index.h"

struct edge_recover_stats {
	int open_rows;        /* segments left open by a crash */
	int truncated;        /* files cut back to their last complete fragment */
	int bytes_dropped;    /* total bytes cut off (incomplete fragments) */
	int rows_dropped;     /* rows whose file was missing or held no complete fragment */
	int orphans_indexed;  /* files without a row, added */
	int orphans_deleted;  /* files without a row and nothing playable, deleted */
};

/* Before any ingest starts: every open row is closed at its file's last complete
 * fragment (the file truncated there); rows without a playable file are dropped; files
 * without a row are indexed or deleted. After this, index and files agree. */
int edge_recover(const char *archive_dir, struct edge_index *ix, struct edge_recover_stats *st);

#endif
