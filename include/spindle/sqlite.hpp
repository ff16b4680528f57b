#pragma once
// spindle::sqlite, the embedded database: link spindle::sqlite. See spindle/sqlite/database.hpp.

#include "spindle/db/database.hpp"
#include "spindle/db/migrate.hpp"
#include "spindle/sqlite/database.hpp"
