// A JDBC client (pgjdbc) driven through the Portcullis database gateway by gateway-jdbc.test.ts.
// Run with the source launcher: java -cp postgresql.jar GatewayJdbcProbe.java URL USER PASSWORD
// Prints one "name<TAB>value" line per step; the test asserts on those lines and on the audit log.
// With a fourth argument "refusal" it only tries to connect and prints the SQLSTATE it was refused with;
// with "write" (a readwrite grant) it runs a batch insert and COPY in and out through CopyManager.
import java.io.StringReader;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class GatewayJdbcProbe {
  private static void out(String name, Object value) {
    System.out.println(name + "\t" + value);
  }

  private static String sqlState(Statement statement, String sql) {
    try {
      statement.execute(sql);
      return "none";
    } catch (SQLException e) {
      return e.getSQLState();
    }
  }

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    if (args.length > 3 && args[3].equals("refusal")) {
      try (Connection conn = DriverManager.getConnection(args[0], props)) {
        out("refused", "no");
      } catch (SQLException e) {
        out("refused", e.getSQLState() + "\t" + e.getMessage());
      }
      return;
    }
    if (args.length > 3 && args[3].equals("write")) {
      write(args[0], props);
      return;
    }
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("select current_user")) {
        rs.next();
        out("current_user", rs.getString(1));
      }

      // Past prepareThreshold (5) pgjdbc switches to a named server-side statement (S_1).
      List<String> names = new ArrayList<>();
      try (PreparedStatement ps = conn.prepareStatement("select name from items where id = ?")) {
        for (int i = 0; i < 7; i++) {
          ps.setInt(1, 1 + (i % 2));
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            names.add(rs.getString(1));
          }
        }
      }
      out("prepared", String.join(",", names));

      try (PreparedStatement ps = conn.prepareStatement("select ?::int4 + 1, ?::text, now() is not null")) {
        ps.setInt(1, 41);
        ps.setString(2, "h\u00e9llo \u2713");
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          out("types", rs.getInt(1) + "," + rs.getString(2) + "," + rs.getBoolean(3));
        }
      }

      try (Statement st = conn.createStatement()) {
        String error = sqlState(st, "select 1/0");
        try (ResultSet rs = st.executeQuery("select 7")) {
          rs.next();
          out("error_then_recovered", error + "," + rs.getInt(1));
        }
      }

      // A transaction, a write the readonly role may not do, a rollback; a cursor read in pieces.
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        out("insert_denied", sqlState(st, "insert into items (name) values ('jdbc')"));
        conn.rollback();
        st.setFetchSize(50);
        long rows = 0;
        long sum = 0;
        try (ResultSet rs = st.executeQuery("select g from generate_series(1, 1000) g")) {
          while (rs.next()) {
            rows++;
            sum += rs.getLong(1);
          }
        }
        conn.commit();
        out("cursor", rows + "," + sum);
      }
      conn.setAutoCommit(true);

      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery("select repeat('x', 1000) from generate_series(1, 5000)")) {
        long chars = 0;
        while (rs.next()) chars += rs.getString(1).length();
        out("large", chars);
      }

      try (ResultSet rs = conn.getMetaData().getTables(null, "public", "items", new String[] {"TABLE"})) {
        out("metadata", rs.next() ? rs.getString("TABLE_NAME") : "missing");
      }

      // Statement.cancel() opens a second connection with the gateway's cancel key.
      try (Statement st = conn.createStatement()) {
        Thread canceller = new Thread(() -> {
          try {
            Thread.sleep(500);
            st.cancel();
          } catch (Exception e) {
            out("cancel_error", e);
          }
        });
        long started = System.nanoTime();
        canceller.start();
        String state = sqlState(st, "select pg_sleep(30)");
        canceller.join();
        out("cancel", state + "," + (System.nanoTime() - started) / 1_000_000);
      }

      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("select 'still open'")) {
        rs.next();
        out("after_cancel", rs.getString(1));
      }
    }
    out("closed", "ok");
  }

  /** A batch (pgjdbc pipelines its Parse/Bind/Execute messages before one Sync) and COPY both ways. */
  private static void write(String url, Properties props) throws Exception {
    try (Connection conn = DriverManager.getConnection(url, props)) {
      try (PreparedStatement ps = conn.prepareStatement("insert into items (name) values (?)")) {
        for (int i = 1; i <= 5; i++) {
          ps.setString(1, "batch-" + i);
          ps.addBatch();
        }
        int total = 0;
        for (int count : ps.executeBatch()) total += count;
        out("batch", total);
      }
      CopyManager copy = conn.unwrap(PGConnection.class).getCopyAPI();
      StringBuilder lines = new StringBuilder();
      for (int i = 1; i <= 1000; i++) lines.append("copy-").append(i).append('\n');
      out("copy_in", copy.copyIn("COPY items (name) FROM STDIN", new StringReader(lines.toString())));
      StringWriter copied = new StringWriter();
      long rows = copy.copyOut("COPY (select name from items where name like 'copy-%' order by id) TO STDOUT", copied);
      out("copy_out", rows + "," + copied.toString().equals(lines.toString()));
      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery("select count(*) from items where name like 'batch-%'")) {
        rs.next();
        out("batch_rows", rs.getLong(1));
      }
    }
    out("closed", "ok");
  }
}
