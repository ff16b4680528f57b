#pragma once
// Everything of Spindle's HTTP layer: the server, the router, the client, the message types and the parser.

#include "spindle/http/body.hpp"
#include "spindle/http/client.hpp"
#include "spindle/http/extract.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/http/layer.hpp"
#include "spindle/http/middleware.hpp"
#include "spindle/http/multipart.hpp"
#include "spindle/http/parser.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/http/router.hpp"
#include "spindle/http/serve_dir.hpp"
#include "spindle/http/server.hpp"
#include "spindle/http/status.hpp"
#include "spindle/http/test_client.hpp"
#include "spindle/http/url.hpp"
