/* edge_analyze.h: per-camera motion analysis thread: decodes the sub stream at the analysis rate. */
#ifndef EDGE_ANALYZE_H
#define EDGE_ANALYZE_H

struct edge_ingest;

/* Runs as the camera's second thread (started by edge_ingest_start): idle while motion is
 * disabled; otherwise decodes sub_url (main_url when there is none), feeds the detector
 * and reports motion start/stop as events and to the recorder. Exits when g->stop. */
void *edge_analyze_thread(void *ingest);

#endif
