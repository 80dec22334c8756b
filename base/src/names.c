/* Name validation (es/names.h). */
#include <es/names.h>

#include "base/internal.h"

static bool valid_name_max(const char *name, size_t max)
{
    if (name == NULL || name[0] == '\0')
        return false;
    size_t i = 0;
    for (; name[i] != '\0'; i++)
        if (i >= max || !esi_name_byte((unsigned char)name[i]))
            return false;
    return true;
}

bool es_valid_store_name(const char *name)
{
    return valid_name_max(name, ES_STORE_NAME_MAX);
}

bool es_valid_name(const char *name)
{
    return valid_name_max(name, ES_NAME_MAX);
}

bool es_valid_entity_type(const char *name)
{
    return valid_name_max(name, ES_ENTITY_TYPE_MAX);
}
