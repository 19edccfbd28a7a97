#ifndef ANVIL_PQBIND_H
#define ANVIL_PQBIND_H

/* libpq, bound at run time (common/dynlib.h): a server on SQLite never maps
 * libpq and what it brings (OpenSSL, Kerberos, LDAP). Included by
 * server/store/pg_int.h instead of <libpq-fe.h>; pg_connect, the one way to
 * a connection, calls pqbind_load first. */
#include <libpq-events.h>
#include <libpq-fe.h>

#include "common/err.h"

#define PQBIND_FUNCS(X)                                                                                      \
	X(PQclear)                                                                                           \
	X(PQcmdStatus)                                                                                       \
	X(PQcmdTuples)                                                                                       \
	X(PQconnectdbParams)                                                                                 \
	X(PQconsumeInput)                                                                                    \
	X(PQerrorMessage)                                                                                    \
	X(PQescapeLiteral)                                                                                   \
	X(PQexec)                                                                                            \
	X(PQexecParams)                                                                                      \
	X(PQexecPrepared)                                                                                    \
	X(PQfinish)                                                                                          \
	X(PQfname)                                                                                           \
	X(PQfreemem)                                                                                         \
	X(PQftype)                                                                                           \
	X(PQgetisnull)                                                                                       \
	X(PQgetlength)                                                                                       \
	X(PQgetvalue)                                                                                        \
	X(PQinstanceData)                                                                                    \
	X(PQnfields)                                                                                         \
	X(PQnotifies)                                                                                        \
	X(PQntuples)                                                                                         \
	X(PQprepare)                                                                                         \
	X(PQregisterEventProc)                                                                               \
	X(PQresultErrorField)                                                                                \
	X(PQresultStatus)                                                                                    \
	X(PQsetInstanceData)                                                                                 \
	X(PQsetNoticeProcessor)                                                                              \
	X(PQsocket)                                                                                          \
	X(PQstatus)                                                                                          \
	X(PQtransactionStatus)

enum pqbind_sym {
#define PQBIND_ENUM(f) PQBIND_##f,
	PQBIND_FUNCS(PQBIND_ENUM)
#undef PQBIND_ENUM
	    PQBIND_N
};

/* Loads libpq (ANVIL_PQ_SONAME); ERR_SYS naming it when it cannot. */
int pqbind_load(struct err *err);
void *pqbind_sym(enum pqbind_sym i);
/* 1 once this process has loaded the library. */
int pqbind_loaded(void);

#define PQBIND(f)            ((__typeof__(&f))pqbind_sym(PQBIND_##f))
#define PQclear              PQBIND(PQclear)
#define PQcmdStatus          PQBIND(PQcmdStatus)
#define PQcmdTuples          PQBIND(PQcmdTuples)
#define PQconnectdbParams    PQBIND(PQconnectdbParams)
#define PQconsumeInput       PQBIND(PQconsumeInput)
#define PQerrorMessage       PQBIND(PQerrorMessage)
#define PQescapeLiteral      PQBIND(PQescapeLiteral)
#define PQexec               PQBIND(PQexec)
#define PQexecParams         PQBIND(PQexecParams)
#define PQexecPrepared       PQBIND(PQexecPrepared)
#define PQfinish             PQBIND(PQfinish)
#define PQfname              PQBIND(PQfname)
#define PQfreemem            PQBIND(PQfreemem)
#define PQftype              PQBIND(PQftype)
#define PQgetisnull          PQBIND(PQgetisnull)
#define PQgetlength          PQBIND(PQgetlength)
#define PQgetvalue           PQBIND(PQgetvalue)
#define PQinstanceData       PQBIND(PQinstanceData)
#define PQnfields            PQBIND(PQnfields)
#define PQnotifies           PQBIND(PQnotifies)
#define PQntuples            PQBIND(PQntuples)
#define PQprepare            PQBIND(PQprepare)
#define PQregisterEventProc  PQBIND(PQregisterEventProc)
#define PQresultErrorField   PQBIND(PQresultErrorField)
#define PQresultStatus       PQBIND(PQresultStatus)
#define PQsetInstanceData    PQBIND(PQsetInstanceData)
#define PQsetNoticeProcessor PQBIND(PQsetNoticeProcessor)
#define PQsocket             PQBIND(PQsocket)
#define PQstatus             PQBIND(PQstatus)
#define PQtransactionStatus  PQBIND(PQtransactionStatus)

#endif
