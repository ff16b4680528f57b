#pragma once
// What a Transaction (or savepoint) and its nested savepoints share. Private to src/pg/.

#include <memory>
#include <string>

#include "session.hpp"

namespace spindle::pg::detail {

struct TransactionState {
  TransactionState(std::shared_ptr<Session> session, std::shared_ptr<TransactionState> parent,
                   std::shared_ptr<void> lease);
  /// Rolls back (without waiting) a transaction that began and was neither committed nor rolled back.
  ~TransactionState();
  std::string savepoint_name() const;

  std::shared_ptr<Session> session;
  std::shared_ptr<TransactionState> parent;  // a savepoint keeps its transaction
  std::shared_ptr<void> lease;               // the pool's hold on the connection, returned after the rollback
  int depth;                                 // 0: the transaction, 1...: savepoints
  bool started = false;                      // its BEGIN (or SAVEPOINT) may have been sent
  bool ending = false;                       // commit() or rollback() was called
  bool finished = false;                     // the server answered the end
};

}  // namespace spindle::pg::detail
