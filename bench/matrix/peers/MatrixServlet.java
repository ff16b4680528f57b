// The thread-per-request peer of the comparison matrix (bench/matrix): the Spring Boot model, a servlet on
// embedded Tomcat 10 with Spring Boot's defaults (200 worker threads, 8,192 connections, a backlog of
// 100). Its "database call" blocks its thread for 50 ms, as a JDBC call does.
//
//   javac -cp /usr/share/java/tomcat10-embed-core.jar -d OUT MatrixServlet.java
//   java -cp /usr/share/java/tomcat10-embed-core.jar:/usr/share/java/jakarta-annotation-api.jar:OUT \
//        MatrixServlet 127.0.0.1 8080 [threads]
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;

public class MatrixServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;

  private static final byte[] PLAINTEXT = "Hello, World!".getBytes(StandardCharsets.UTF_8);

  @Override
  protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
    switch (request.getRequestURI()) {
      case "/plaintext" -> write(response, "text/plain", PLAINTEXT);
      case "/json" -> write(response, "application/json",
          "{\"message\":\"Hello, World!\"}".getBytes(StandardCharsets.UTF_8));
      case "/delay" -> {
        try {
          Thread.sleep(50);  // the blocking "database call"
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        write(response, "text/plain", "waited 50 ms".getBytes(StandardCharsets.UTF_8));
      }
      default -> response.sendError(404);
    }
  }

  private static void write(HttpServletResponse response, String type, byte[] body) throws IOException {
    response.setContentType(type);
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
  }

  public static void main(String[] args) throws Exception {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 8080;
    int threads = args.length > 2 ? Integer.parseInt(args[2]) : 200;
    Tomcat tomcat = new Tomcat();
    tomcat.setBaseDir(System.getProperty("java.io.tmpdir") + "/spindle-matrix-tomcat-" + ProcessHandle.current().pid());
    Connector connector = new Connector("org.apache.coyote.http11.Http11NioProtocol");
    connector.setProperty("address", host);
    connector.setPort(port);
    connector.setProperty("maxThreads", Integer.toString(threads));  // Spring Boot: server.tomcat.threads.max
    connector.setProperty("maxConnections", "8192");                  // server.tomcat.max-connections
    connector.setProperty("acceptCount", "100");                      // server.tomcat.accept-count
    tomcat.setConnector(connector);
    Context context = tomcat.addContext("", null);
    Tomcat.addServlet(context, "matrix", new MatrixServlet()).addMapping("/*");
    tomcat.start();
    System.out.println("listening on " + host + ":" + connector.getLocalPort());
    System.out.flush();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        tomcat.stop();
        tomcat.destroy();
      } catch (Exception ignored) {
        // exiting anyway
      }
    }));
    tomcat.getServer().await();
  }
}
