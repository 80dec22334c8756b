/* es — an event-sourcing storage engine over NATS JetStream.
 * The umbrella header: include this one. See docs/api.md. */
#ifndef ES_ES_H
#define ES_ES_H

#include <es/version.h>
#include <es/status.h>
#include <es/time.h>
#include <es/hash.h>
#include <es/connect.h>
#include <es/subject.h>
#include <es/store.h>
#include <es/tenant.h>
#include <es/event.h>
#include <es/append.h>
#include <es/read.h>
#include <es/watch.h>
#include <es/decide.h>
#include <es/value.h>
#include <es/codec.h>
#include <es/envelope.h>
#include <es/dict.h>
#include <es/kvkey.h>
#include <es/checkpoint.h>
#include <es/entity_types.h>
#include <es/snapshot.h>
#include <es/projection.h>
#include <es/inspect.h>
#include <es/import.h>
#include <es/sink.h>

#endif
