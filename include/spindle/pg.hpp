#pragma once
// spindle::pg, PostgreSQL: link spindle::pg. See spindle/pg/connection.hpp and spindle/pg/pool.hpp.

#include "spindle/db/database.hpp"
#include "spindle/db/migrate.hpp"
#include "spindle/pg/connection.hpp"
#include "spindle/pg/listener.hpp"
#include "spindle/pg/pool.hpp"
