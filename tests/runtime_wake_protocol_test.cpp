// The wake-point protocol of a task (detail/task_header.hpp), driven by hand on a scheduler that only
// records what it is asked to queue, so every interleaving below is exact.
#include <gtest/gtest.h>

#include <coroutine>
#include <vector>

#include "spindle/runtime/detail/scheduler.hpp"
#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"

using spindle::Task;
using spindle::detail::ScheduleHint;
using spindle::detail::TaskHeader;
using spindle::detail::Waker;

namespace {

class RecordingScheduler final : public spindle::detail::Scheduler {
 public:
  ~RecordingScheduler() override { cancel_all_tasks(); }
  void schedule(TaskHeader& task, ScheduleHint) noexcept override { queued.push_back(&task); }
  // Runs the oldest queued task, as a runtime's loop would.
  void run_next() {
    TaskHeader* task = queued.front();
    queued.erase(queued.begin());
    task->run();
  }
  std::vector<TaskHeader*> queued;
};

// Suspends once and hands out two wakers for that one suspension, as timeout() does (its timer and
// its operation).
struct TwoWakers {
  Waker first;
  Waker second;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    first = spindle::detail::make_waker(h);
    second = spindle::detail::make_waker(h);
  }
  void await_resume() const noexcept {}
};

struct Script {
  TwoWakers a;
  TwoWakers b;
  int step = 0;
};

Task<void> body(Script& s) {
  s.step = 1;
  co_await s.a;
  s.step = 2;
  s.a.second.wake();  // a waker of the suspension that just ended, still around: must do nothing
  co_await s.b;
  s.step = 3;
}

TEST(WakeProtocol, TheFirstWakeOfASuspensionWinsAndLateOnesAreDropped) {
  RecordingScheduler scheduler;
  Script script;
  auto* task = new spindle::detail::SpawnedTask<void>(scheduler, body(script));
  task->add_ref();  // ours, to look at it after it completes
  scheduler.spawn(*task);
  ASSERT_EQ(scheduler.queued.size(), 1u);
  scheduler.run_next();
  EXPECT_EQ(script.step, 1);

  script.a.first.wake();
  script.a.second.wake();  // same suspension, second: dropped
  ASSERT_EQ(scheduler.queued.size(), 1u);
  scheduler.run_next();
  // During that run the task woke its old waker; it must not have been queued again, or the next run
  // would resume the coroutine at `b` without b's event (or a frame already destroyed, for timeout()).
  EXPECT_EQ(script.step, 2);
  EXPECT_TRUE(scheduler.queued.empty());

  script.b.second.wake();  // the new suspension: its wakers work
  ASSERT_EQ(scheduler.queued.size(), 1u);
  scheduler.run_next();
  EXPECT_EQ(script.step, 3);
  EXPECT_TRUE(task->is_complete());
  task->release();
}

TEST(WakeProtocol, AProvisionalClaimHoldsOffOtherWakesUntilWithdrawnOrConfirmed) {
  RecordingScheduler scheduler;
  Script script;
  auto* task = new spindle::detail::SpawnedTask<void>(scheduler, body(script));
  scheduler.spawn(*task);
  scheduler.run_next();  // suspended at a

  const Waker reactor = script.a.first;
  ASSERT_TRUE(reactor.task->claim_wake_provisionally(reactor.resume_at));
  script.a.second.wake();  // a timer firing meanwhile: dropped
  EXPECT_TRUE(scheduler.queued.empty());
  reactor.task->withdraw_wake(reactor.resume_at);  // the syscall would still block
  script.a.second.wake();                          // now the timer gets it
  ASSERT_EQ(scheduler.queued.size(), 1u);
  scheduler.run_next();
  EXPECT_EQ(script.step, 2);

  const Waker b = script.b.first;
  ASSERT_TRUE(b.task->claim_wake_provisionally(b.resume_at));
  b.task->confirm_wake(b.resume_at);
  ASSERT_EQ(scheduler.queued.size(), 1u);
  scheduler.run_next();
  EXPECT_EQ(script.step, 3);
}

}  // namespace
