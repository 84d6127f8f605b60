#include "store/postgres/migrations.h"

#include <gtest/gtest.h>

#include "store/schema.h"
#include "store/sqlite/migrations.h"

namespace ferry {
namespace {

// A database of either kind at version N holds the same tables: both lists carry the
// same versions, in ascending order, with the same descriptions. (A version may be left
// out while another branch holds it: 6 is the many-hosts work's, 7 the SLOs'.)
TEST(Migrations, SqliteAndPostgresListsAgree) {
  const auto& a = sqlite::migrations();
  const auto& b = postgres::migrations();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GT(a[i].version, i == 0 ? 0 : a[i - 1].version);
    EXPECT_EQ(b[i].version, a[i].version);
    EXPECT_EQ(b[i].description, a[i].description);
  }
}

TEST(Migrations, TheOneActiveIndexIsBuiltFromIsFinal) {
  EXPECT_EQ(schema::final_states_sql(), "'succeeded', 'failed', 'rolled_back', 'aborted'");
  const std::string sql = schema::one_active_index_sql();
  EXPECT_NE(sql.find("deployments_one_active"), std::string::npos);
  EXPECT_NE(sql.find(schema::final_states_sql()), std::string::npos);
  EXPECT_EQ(sql.find("superseded"), std::string::npos);
}

}  // namespace
}  // namespace ferry
