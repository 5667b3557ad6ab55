/* Compiled with -std=c99 -pedantic -Wall -Werror: the header is plain C99. */
#include "tornado_rs.h"

static tornado_future *step(tornado_coroutine *co, tornado_future *resumed, void *userdata) {
    (void)co; (void)resumed; (void)userdata;
    return NULL;
}

int header_check(void);
int header_check(void) {
    tornado_coroutine_fn fn = step;
    tornado_code rc = TORNADO_OK;
    uint32_t ev = TORNADO_READ | TORNADO_WRITE | TORNADO_ERROR;
    (void)fn;
    return (int)rc + (int)ev + (tornado_code_name(TORNADO_ERR_USER) != NULL);
}
