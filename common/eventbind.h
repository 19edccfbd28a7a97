#ifndef ANVIL_EVENTBIND_H
#define ANVIL_EVENTBIND_H

/* libevent's HTTP client, bound at run time (common/dynlib.h): one library
 * with nothing but libc under it, which a short-lived process (the CLI)
 * maps in a fraction of a millisecond where libcurl brings some 30 (TLS,
 * Kerberos, LDAP, ...) and costs 5-9 ms per start. Only common/httpev.c
 * includes this, instead of <event2/...>; it calls eventbind_load first. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/err.h"

#define EVENTBIND_FUNCS(X)                                                                                   \
	X(event_add)                                                                                         \
	X(event_base_new)                                                                                    \
	X(event_base_free)                                                                                   \
	X(event_base_dispatch)                                                                               \
	X(event_base_loopbreak)                                                                              \
	X(event_base_loopexit)                                                                               \
	X(event_free)                                                                                        \
	X(event_new)                                                                                         \
	X(evbuffer_add)                                                                                      \
	X(evbuffer_get_length)                                                                               \
	X(evbuffer_remove)                                                                                   \
	X(bufferevent_getfd)                                                                                 \
	X(bufferevent_set_max_single_read)                                                                   \
	X(bufferevent_set_max_single_write)                                                                  \
	X(evhttp_connection_get_bufferevent)                                                                 \
	X(evhttp_add_header)                                                                                 \
	X(evhttp_connection_base_new)                                                                        \
	X(evhttp_connection_free)                                                                            \
	X(evhttp_connection_set_timeout_tv)                                                                  \
	X(evhttp_make_request)                                                                               \
	X(evhttp_request_get_input_buffer)                                                                   \
	X(evhttp_request_get_input_headers)                                                                  \
	X(evhttp_request_get_output_buffer)                                                                  \
	X(evhttp_request_get_output_headers)                                                                 \
	X(evhttp_request_get_response_code)                                                                  \
	X(evhttp_request_free)                                                                               \
	X(evhttp_request_new)                                                                                \
	X(evhttp_request_set_chunked_cb)                                                                     \
	X(evhttp_request_set_error_cb)                                                                       \
	X(evhttp_uri_free)                                                                                   \
	X(evhttp_uri_get_host)                                                                               \
	X(evhttp_uri_get_port)                                                                               \
	X(evhttp_uri_get_scheme)                                                                             \
	X(evhttp_uri_parse_with_flags)

enum eventbind_sym {
#define EVENTBIND_ENUM(f) EVENTBIND_##f,
	EVENTBIND_FUNCS(EVENTBIND_ENUM)
#undef EVENTBIND_ENUM
	    EVENTBIND_N
};

/* Loads libevent; ERR_SYS naming it when it cannot. */
int eventbind_load(struct err *err);
void *eventbind_sym(enum eventbind_sym i);
/* 1 once this process has loaded libevent (tests read it). */
int eventbind_loaded(void);

#define EVENTBIND(f)                      ((__typeof__(&f))eventbind_sym(EVENTBIND_##f))
#define event_add                         EVENTBIND(event_add)
#define event_free                        EVENTBIND(event_free)
#define event_new                         EVENTBIND(event_new)
#define evhttp_request_free               EVENTBIND(evhttp_request_free)
#define evhttp_request_set_chunked_cb     EVENTBIND(evhttp_request_set_chunked_cb)
#define bufferevent_getfd                 EVENTBIND(bufferevent_getfd)
#define evhttp_connection_get_bufferevent EVENTBIND(evhttp_connection_get_bufferevent)
#define bufferevent_set_max_single_read   EVENTBIND(bufferevent_set_max_single_read)
#define bufferevent_set_max_single_write  EVENTBIND(bufferevent_set_max_single_write)
#define event_base_new                    EVENTBIND(event_base_new)
#define event_base_free                   EVENTBIND(event_base_free)
#define event_base_dispatch               EVENTBIND(event_base_dispatch)
#define event_base_loopbreak              EVENTBIND(event_base_loopbreak)
#define event_base_loopexit               EVENTBIND(event_base_loopexit)
#define evbuffer_add                      EVENTBIND(evbuffer_add)
#define evbuffer_get_length               EVENTBIND(evbuffer_get_length)
#define evbuffer_remove                   EVENTBIND(evbuffer_remove)
#define evhttp_add_header                 EVENTBIND(evhttp_add_header)
#define evhttp_connection_base_new        EVENTBIND(evhttp_connection_base_new)
#define evhttp_connection_free            EVENTBIND(evhttp_connection_free)
#define evhttp_connection_set_timeout_tv  EVENTBIND(evhttp_connection_set_timeout_tv)
#define evhttp_make_request               EVENTBIND(evhttp_make_request)
#define evhttp_request_get_input_buffer   EVENTBIND(evhttp_request_get_input_buffer)
#define evhttp_request_get_input_headers  EVENTBIND(evhttp_request_get_input_headers)
#define evhttp_request_get_output_buffer  EVENTBIND(evhttp_request_get_output_buffer)
#define evhttp_request_get_output_headers EVENTBIND(evhttp_request_get_output_headers)
#define evhttp_request_get_response_code  EVENTBIND(evhttp_request_get_response_code)
#define evhttp_request_new                EVENTBIND(evhttp_request_new)
#define evhttp_request_set_error_cb       EVENTBIND(evhttp_request_set_error_cb)
#define evhttp_uri_free                   EVENTBIND(evhttp_uri_free)
#define evhttp_uri_get_host               EVENTBIND(evhttp_uri_get_host)
#define evhttp_uri_get_port               EVENTBIND(evhttp_uri_get_port)
#define evhttp_uri_get_scheme             EVENTBIND(evhttp_uri_get_scheme)
#define evhttp_uri_parse_with_flags       EVENTBIND(evhttp_uri_parse_with_flags)

#endif
