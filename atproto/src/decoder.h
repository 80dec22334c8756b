/* The decoder's private state, shared by decoder.c and frame.c. */
#ifndef ES_ATP_DECODER_H
#define ES_ATP_DECODER_H

#include <es/atproto.h>

struct es_atp_decoder {
    es_atp_options opts; /* limits with defaults filled in */
    es_atp_stats stats;
    es_arena *scratch; /* record and commit blocks are decoded here, reset each time */
};

#endif
