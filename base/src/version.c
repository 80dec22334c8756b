/* es_version (es/version.h): the version this library was built as. */
#include <es/version.h>

const char *es_version(void)
{
    return ES_VERSION_STRING;
}
