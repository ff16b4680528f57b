#pragma once
// Everything a Spindle program needs from the runtime and networking layers.

#include "spindle/net/socket_address.hpp"
#include "spindle/net/tcp_listener.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/net/unix_stream.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/signal.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/mpsc.hpp"
#include "spindle/sync/mutex.hpp"
#include "spindle/sync/notify.hpp"
#include "spindle/sync/oneshot.hpp"
#include "spindle/sync/semaphore.hpp"
